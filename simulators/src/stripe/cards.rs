//! Stripe's test cards: the `pm_card_*` tokens and the test card numbers, and how each
//! behaves when attached, set up or charged.

use sha2::{Digest, Sha256};

/// Why a card is refused, as Stripe reports it (`code`, `decline_code`, `message`), and
/// what the declined charge's `outcome` says about it (`advice_code`,
/// `network_decline_code`; `null` where the simulator does not know Stripe's value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decline {
    pub code: String,
    pub decline_code: String,
    pub message: String,
    /// `outcome.advice_code`: `try_again_later`, `do_not_try_again` or
    /// `confirm_card_data`.
    pub advice_code: Option<&'static str>,
    /// `outcome.network_decline_code`: the card network's own code (ISO 8583).
    pub network_decline_code: Option<&'static str>,
}

impl Decline {
    fn new(code: &str, decline_code: &str, message: &str) -> Self {
        Self {
            code: code.into(),
            decline_code: decline_code.into(),
            message: message.into(),
            advice_code: None,
            network_decline_code: None,
        }
    }

    fn with_network(
        mut self,
        advice_code: &'static str,
        network_decline_code: &'static str,
    ) -> Self {
        self.advice_code = Some(advice_code);
        self.network_decline_code = Some(network_decline_code);
        self
    }

    /// `card_declined` / `generic_decline`; Stripe's test card's charge says
    /// `try_again_later` and the network's `01`.
    pub fn generic() -> Self {
        Self::new(
            "card_declined",
            "generic_decline",
            "Your card was declined.",
        )
        .with_network("try_again_later", "01")
    }

    /// `card_declined` / `insufficient_funds`; the network's code is `51`.
    pub fn insufficient_funds() -> Self {
        Self::new(
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        )
        .with_network("try_again_later", "51")
    }

    pub fn expired_card() -> Self {
        Self::new("expired_card", "expired_card", "Your card has expired.")
    }

    /// An off-session payment with a card whose issuer wants 3D Secure.
    pub fn authentication_required() -> Self {
        Self::new(
            "authentication_required",
            "authentication_required",
            "Your card was declined. This transaction requires authentication.",
        )
    }

    /// The decline a given `decline_code` produces (the control surface's "fail the next
    /// charge"): the documented code and message for the common ones, `card_declined` with
    /// Stripe's generic message for any other.
    pub fn from_decline_code(decline_code: &str) -> Self {
        match decline_code {
            "generic_decline" => Self::generic(),
            "insufficient_funds" => Self::insufficient_funds(),
            "expired_card" => Self::expired_card(),
            "authentication_required" => Self::authentication_required(),
            "incorrect_cvc" => Self::new(
                "incorrect_cvc",
                "incorrect_cvc",
                "Your card's security code is incorrect.",
            ),
            "processing_error" => Self::new(
                "processing_error",
                "processing_error",
                "An error occurred while processing your card. Try again in a little bit.",
            ),
            other => Self::new("card_declined", other, "Your card was declined."),
        }
    }
}

/// What a test card does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// Attaches, sets up and charges.
    Succeeds,
    /// Refused when attached, set up or charged.
    Declines(Decline),
    /// Attaches and sets up; every charge is declined (`4000000000000341`).
    DeclinesCharges,
    /// Every payment and setup needs 3D Secure (`4000002760003184`); off-session ones
    /// are declined with `authentication_required`.
    RequiresAuthentication,
}

/// A card as the simulator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCard {
    pub brand: &'static str,
    pub last4: String,
    pub country: &'static str,
    pub funding: &'static str,
    pub fingerprint: String,
    pub behavior: Behavior,
}

/// The `pm_card_*` tokens and the number each stands for.
const TOKENS: &[(&str, &str)] = &[
    ("pm_card_visa", "4242424242424242"),
    ("pm_card_mastercard", "5555555555554444"),
    ("pm_card_chargeDeclined", "4000000000000002"),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "4000000000009995",
    ),
    ("pm_card_chargeDeclinedExpiredCard", "4000000000000069"),
    ("pm_card_chargeCustomerFail", "4000000000000341"),
    ("pm_card_authenticationRequired", "4000002760003184"),
];

/// The card number a `pm_card_*` token stands for.
pub fn token_number(token: &str) -> Option<&'static str> {
    TOKENS
        .iter()
        .find(|(name, _)| *name == token)
        .map(|(_, number)| *number)
}

/// The card for a number, or `None` when the number fails the Luhn check.
pub fn card_for_number(number: &str) -> Option<TestCard> {
    if number.len() < 12
        || number.len() > 19
        || !number.bytes().all(|b| b.is_ascii_digit())
        || !luhn(number)
    {
        return None;
    }
    let behavior = match number {
        "4000000000000002" => Behavior::Declines(Decline::generic()),
        "4000000000009995" => Behavior::Declines(Decline::insufficient_funds()),
        "4000000000000069" => Behavior::Declines(Decline::expired_card()),
        "4000000000000341" => Behavior::DeclinesCharges,
        "4000002760003184" => Behavior::RequiresAuthentication,
        _ => Behavior::Succeeds,
    };
    let brand = match number.as_bytes()[0] {
        b'4' => "visa",
        b'5' | b'2' => "mastercard",
        b'3' if number.starts_with("34") || number.starts_with("37") => "amex",
        b'6' => "discover",
        _ => "unknown",
    };
    // 4000002760003184 is one of Stripe's German (276) cards.
    let country = if number.starts_with("400000276") {
        "DE"
    } else {
        "US"
    };
    let digest = Sha256::digest(number.as_bytes());
    let fingerprint: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Some(TestCard {
        brand,
        last4: number[number.len() - 4..].to_owned(),
        country,
        funding: "credit",
        fingerprint,
        behavior,
    })
}

fn luhn(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_numbers_are_luhn_valid_and_behave() {
        for (_, number) in TOKENS {
            assert!(card_for_number(number).is_some(), "{number}");
        }
        assert!(card_for_number("4242424242424241").is_none());
        let visa = card_for_number("4242424242424242").unwrap();
        assert_eq!((visa.brand, visa.last4.as_str()), ("visa", "4242"));
        assert_eq!(
            card_for_number("4000000000009995").unwrap().behavior,
            Behavior::Declines(Decline::insufficient_funds())
        );
        assert_eq!(
            card_for_number("5555555555554444").unwrap().brand,
            "mastercard"
        );
    }

    #[test]
    fn the_control_surfaces_generic_decline_is_the_test_cards() {
        assert_eq!(
            Decline::from_decline_code("generic_decline"),
            Decline::generic()
        );
        assert_eq!(Decline::generic().network_decline_code, Some("01"));
        assert_eq!(Decline::from_decline_code("do_not_honor").advice_code, None);
    }
}
