//! The Play Developer API's resources as Google renders them (field names, enum strings,
//! times as RFC 3339 with milliseconds or as millisecond strings, money as micros or as
//! `Money`), built from the purchases' state at a given time.

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::{Enum, Object};

use super::purchases::{CancelledBy, Phase, ProductPurchase, Subscription};

/// `subscriptionState`: the states this simulator reaches.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "SubscriptionState")]
pub enum SubscriptionState {
    #[oai(rename = "SUBSCRIPTION_STATE_ACTIVE")]
    Active,
    #[oai(rename = "SUBSCRIPTION_STATE_PAUSED")]
    Paused,
    #[oai(rename = "SUBSCRIPTION_STATE_IN_GRACE_PERIOD")]
    InGracePeriod,
    #[oai(rename = "SUBSCRIPTION_STATE_ON_HOLD")]
    OnHold,
    /// Auto-renewal is off; access continues to the expiry time.
    #[oai(rename = "SUBSCRIPTION_STATE_CANCELED")]
    Canceled,
    #[oai(rename = "SUBSCRIPTION_STATE_EXPIRED")]
    Expired,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "AcknowledgementState")]
pub enum AcknowledgementState {
    #[oai(rename = "ACKNOWLEDGEMENT_STATE_PENDING")]
    Pending,
    #[oai(rename = "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED")]
    Acknowledged,
}

/// `cancelSurveyResult.reason`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "CancelSurveyReason")]
pub enum CancelSurveyReason {
    #[oai(rename = "CANCEL_SURVEY_REASON_OTHERS")]
    Others,
    #[oai(rename = "CANCEL_SURVEY_REASON_NOT_ENOUGH_USAGE")]
    NotEnoughUsage,
    #[oai(rename = "CANCEL_SURVEY_REASON_TECHNICAL_ISSUES")]
    TechnicalIssues,
    #[oai(rename = "CANCEL_SURVEY_REASON_COST_RELATED")]
    CostRelated,
    #[oai(rename = "CANCEL_SURVEY_REASON_FOUND_BETTER_APP")]
    FoundBetterApp,
}

impl CancelSurveyReason {
    /// From the v1 API's number (0 other, 1 not enough usage, 2 technical issues, 3 cost,
    /// 4 found a better app).
    fn from_v1(reason: u8) -> Option<Self> {
        match reason {
            0 => Some(Self::Others),
            1 => Some(Self::NotEnoughUsage),
            2 => Some(Self::TechnicalIssues),
            3 => Some(Self::CostRelated),
            4 => Some(Self::FoundBetterApp),
            _ => None,
        }
    }
}

/// Google's `Money`: whole units (a decimal string) and nanos.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "Money", rename_all = "camelCase")]
pub struct Money {
    pub currency_code: String,
    pub units: String,
    pub nanos: i32,
}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "AutoRenewingPlan", rename_all = "camelCase")]
pub struct AutoRenewingPlan {
    pub auto_renew_enabled: bool,
    pub recurring_price: Money,
}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "OfferDetails", rename_all = "camelCase")]
pub struct OfferDetails {
    pub base_plan_id: String,
    pub offer_tags: Vec<String>,
}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "SubscriptionPurchaseLineItem", rename_all = "camelCase")]
pub struct SubscriptionPurchaseLineItem {
    pub product_id: String,
    /// RFC 3339.
    pub expiry_time: String,
    pub auto_renewing_plan: AutoRenewingPlan,
    pub offer_details: OfferDetails,
    pub latest_successful_order_id: String,
}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(
    rename = "ExternalAccountIdentifiers",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct ExternalAccountIdentifiers {
    pub obfuscated_external_account_id: Option<String>,
    pub obfuscated_external_profile_id: Option<String>,
}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "PausedStateContext", rename_all = "camelCase")]
pub struct PausedStateContext {
    pub auto_resume_time: String,
}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "CancelSurveyResult", rename_all = "camelCase")]
pub struct CancelSurveyResult {
    pub reason: CancelSurveyReason,
}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(
    rename = "UserInitiatedCancellation",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct UserInitiatedCancellation {
    pub cancel_survey_result: Option<CancelSurveyResult>,
    pub cancel_time: String,
}

/// An object with no fields: its presence is the information (`testPurchase`,
/// `systemInitiatedCancellation`, …).
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "GoogleEmpty")]
pub struct Empty {}

#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(
    rename = "CanceledStateContext",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct CanceledStateContext {
    pub user_initiated_cancellation: Option<UserInitiatedCancellation>,
    pub system_initiated_cancellation: Option<Empty>,
    pub developer_initiated_cancellation: Option<Empty>,
    pub replacement_cancellation: Option<Empty>,
}

/// `inGracePeriodStateContext` and `onHoldStateContext`: why the subscription is there.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "RenewalDeclinedStateContext", rename_all = "camelCase")]
pub struct RenewalDeclinedStateContext {
    pub renewal_declined: Empty,
}

/// `purchases.subscriptionsv2.get`.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(
    rename = "SubscriptionPurchaseV2",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct SubscriptionPurchaseV2 {
    /// `androidpublisher#subscriptionPurchaseV2`.
    pub kind: String,
    /// The buyer's country (ISO 3166-1 alpha-2).
    pub region_code: String,
    pub line_items: Vec<SubscriptionPurchaseLineItem>,
    /// RFC 3339.
    pub start_time: String,
    pub subscription_state: SubscriptionState,
    pub latest_order_id: String,
    pub linked_purchase_token: Option<String>,
    pub paused_state_context: Option<PausedStateContext>,
    pub canceled_state_context: Option<CanceledStateContext>,
    /// Present in the grace period: the renewal was declined.
    pub in_grace_period_state_context: Option<RenewalDeclinedStateContext>,
    /// Present on account hold: the renewal was declined.
    pub on_hold_state_context: Option<RenewalDeclinedStateContext>,
    /// Changes whenever the subscription does.
    pub etag: String,
    /// Present (empty) when a license tester bought it.
    pub test_purchase: Option<Empty>,
    pub acknowledgement_state: AcknowledgementState,
    pub external_account_identifiers: Option<ExternalAccountIdentifiers>,
}

/// The v1 `SubscriptionCancelSurveyResult`.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "SubscriptionCancelSurveyResult", rename_all = "camelCase")]
pub struct SubscriptionCancelSurveyResult {
    pub cancel_survey_reason: u8,
}

/// `purchases.subscriptions.get` (v1): times as millisecond strings, price in micros.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(
    rename = "SubscriptionPurchase",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct SubscriptionPurchase {
    /// `androidpublisher#subscriptionPurchase`.
    pub kind: String,
    pub start_time_millis: String,
    pub expiry_time_millis: String,
    pub auto_resume_time_millis: Option<String>,
    pub auto_renewing: bool,
    pub price_currency_code: String,
    pub price_amount_micros: String,
    pub country_code: String,
    pub developer_payload: String,
    /// 0 pending, 1 received (absent once expired).
    pub payment_state: Option<u8>,
    /// 0 user, 1 system, 2 replaced, 3 developer.
    pub cancel_reason: Option<u8>,
    pub user_cancellation_time_millis: Option<String>,
    pub cancel_survey_result: Option<SubscriptionCancelSurveyResult>,
    pub order_id: String,
    pub linked_purchase_token: Option<String>,
    /// 0 for a license tester's purchase.
    pub purchase_type: Option<u8>,
    /// 0 yet to be acknowledged, 1 acknowledged.
    pub acknowledgement_state: u8,
    pub obfuscated_external_account_id: Option<String>,
    pub obfuscated_external_profile_id: Option<String>,
}

/// `purchases.products.get`.
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(
    rename = "ProductPurchase",
    rename_all = "camelCase",
    skip_serializing_if_is_none
)]
pub struct ProductPurchaseResource {
    /// `androidpublisher#productPurchase`.
    pub kind: String,
    pub purchase_time_millis: String,
    /// 0 purchased, 1 canceled (refunded).
    pub purchase_state: u8,
    /// 0 yet to be consumed, 1 consumed.
    pub consumption_state: u8,
    pub developer_payload: String,
    pub order_id: String,
    /// 0 for a license tester's purchase.
    pub purchase_type: Option<u8>,
    /// 0 yet to be acknowledged, 1 acknowledged.
    pub acknowledgement_state: u8,
    pub purchase_token: String,
    pub product_id: String,
    pub quantity: u32,
    /// What has not been refunded: the quantity, or 0 once refunded.
    pub refundable_quantity: u32,
    pub obfuscated_external_account_id: Option<String>,
    pub obfuscated_external_profile_id: Option<String>,
    pub region_code: String,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn millis(time: DateTime<Utc>) -> String {
    time.timestamp_millis().to_string()
}

/// Micros as `Money`: 4 990 000 EUR micros are 4 units and 990 000 000 nanos.
fn money(micros: i64, currency_code: &str) -> Money {
    Money {
        currency_code: currency_code.to_owned(),
        units: (micros / 1_000_000).to_string(),
        nanos: i32::try_from((micros % 1_000_000) * 1000).unwrap_or(0),
    }
}

fn external_ids(
    account: &Option<String>,
    profile: &Option<String>,
) -> Option<ExternalAccountIdentifiers> {
    (account.is_some() || profile.is_some()).then(|| ExternalAccountIdentifiers {
        obfuscated_external_account_id: account.clone(),
        obfuscated_external_profile_id: profile.clone(),
    })
}

impl Subscription {
    pub fn state(&self) -> SubscriptionState {
        match self.phase {
            Phase::Expired { .. } => SubscriptionState::Expired,
            _ if !self.auto_renew => SubscriptionState::Canceled,
            Phase::Active => SubscriptionState::Active,
            Phase::InGracePeriod { .. } => SubscriptionState::InGracePeriod,
            Phase::OnHold { .. } => SubscriptionState::OnHold,
            Phase::Paused { .. } => SubscriptionState::Paused,
        }
    }

    pub fn v2(&self) -> SubscriptionPurchaseV2 {
        let latest_order_id = self.latest_order_id();
        let canceled_state_context = self.cancellation.map(|cancellation| {
            let mut context = CanceledStateContext {
                user_initiated_cancellation: None,
                system_initiated_cancellation: None,
                developer_initiated_cancellation: None,
                replacement_cancellation: None,
            };
            match cancellation.by {
                CancelledBy::User { survey_reason } => {
                    context.user_initiated_cancellation = Some(UserInitiatedCancellation {
                        cancel_survey_result: survey_reason
                            .and_then(CancelSurveyReason::from_v1)
                            .map(|reason| CancelSurveyResult { reason }),
                        cancel_time: rfc3339(cancellation.at),
                    });
                }
                CancelledBy::System => context.system_initiated_cancellation = Some(Empty {}),
                CancelledBy::Developer => {
                    context.developer_initiated_cancellation = Some(Empty {});
                }
                CancelledBy::Replaced => context.replacement_cancellation = Some(Empty {}),
            }
            context
        });
        SubscriptionPurchaseV2 {
            kind: "androidpublisher#subscriptionPurchaseV2".into(),
            region_code: self.region_code.clone(),
            line_items: vec![SubscriptionPurchaseLineItem {
                product_id: self.product_id.clone(),
                expiry_time: rfc3339(self.expiry_time()),
                auto_renewing_plan: AutoRenewingPlan {
                    auto_renew_enabled: self.auto_renew,
                    recurring_price: money(self.plan.price_micros, &self.plan.currency_code),
                },
                offer_details: OfferDetails {
                    base_plan_id: self.plan.base_plan_id.clone(),
                    offer_tags: Vec::new(),
                },
                latest_successful_order_id: latest_order_id.clone(),
            }],
            start_time: rfc3339(self.start_time),
            subscription_state: self.state(),
            latest_order_id,
            linked_purchase_token: self.linked_purchase_token.clone(),
            paused_state_context: match self.phase {
                Phase::Paused { resume_at, .. } => Some(PausedStateContext {
                    auto_resume_time: rfc3339(resume_at),
                }),
                _ => None,
            },
            canceled_state_context,
            in_grace_period_state_context: matches!(self.phase, Phase::InGracePeriod { .. }).then(
                || RenewalDeclinedStateContext {
                    renewal_declined: Empty {},
                },
            ),
            on_hold_state_context: matches!(self.phase, Phase::OnHold { .. }).then(|| {
                RenewalDeclinedStateContext {
                    renewal_declined: Empty {},
                }
            }),
            etag: self.etag(),
            test_purchase: self.test_purchase.then_some(Empty {}),
            acknowledgement_state: if self.acknowledged {
                AcknowledgementState::Acknowledged
            } else {
                AcknowledgementState::Pending
            },
            external_account_identifiers: external_ids(
                &self.obfuscated_account_id,
                &self.obfuscated_profile_id,
            ),
        }
    }

    pub fn v1(&self) -> SubscriptionPurchase {
        let user_cancellation = self
            .cancellation
            .and_then(|cancellation| match cancellation.by {
                CancelledBy::User { survey_reason } => Some((cancellation.at, survey_reason)),
                _ => None,
            });
        SubscriptionPurchase {
            kind: "androidpublisher#subscriptionPurchase".into(),
            start_time_millis: millis(self.start_time),
            expiry_time_millis: millis(self.expiry_time()),
            auto_resume_time_millis: match self.phase {
                Phase::Paused { resume_at, .. } => Some(millis(resume_at)),
                _ => None,
            },
            auto_renewing: self.auto_renew,
            price_currency_code: self.plan.currency_code.clone(),
            price_amount_micros: self.plan.price_micros.to_string(),
            country_code: self.region_code.clone(),
            developer_payload: String::new(),
            payment_state: match self.phase {
                Phase::Active | Phase::Paused { .. } => Some(1),
                Phase::InGracePeriod { .. } | Phase::OnHold { .. } => Some(0),
                Phase::Expired { .. } => None,
            },
            cancel_reason: self.cancellation.map(|cancellation| match cancellation.by {
                CancelledBy::User { .. } => 0,
                CancelledBy::System => 1,
                CancelledBy::Replaced => 2,
                CancelledBy::Developer => 3,
            }),
            user_cancellation_time_millis: user_cancellation.map(|(at, _)| millis(at)),
            cancel_survey_result: user_cancellation.and_then(|(_, reason)| reason).map(
                |cancel_survey_reason| SubscriptionCancelSurveyResult {
                    cancel_survey_reason,
                },
            ),
            order_id: self.latest_order_id(),
            linked_purchase_token: self.linked_purchase_token.clone(),
            purchase_type: self.test_purchase.then_some(0),
            acknowledgement_state: u8::from(self.acknowledged),
            obfuscated_external_account_id: self.obfuscated_account_id.clone(),
            obfuscated_external_profile_id: self.obfuscated_profile_id.clone(),
        }
    }
}

impl ProductPurchase {
    pub fn resource(&self) -> ProductPurchaseResource {
        ProductPurchaseResource {
            kind: "androidpublisher#productPurchase".into(),
            purchase_time_millis: millis(self.purchase_time),
            purchase_state: u8::from(self.refunded_at.is_some()),
            consumption_state: u8::from(self.consumed),
            developer_payload: String::new(),
            order_id: self.order_id.clone(),
            purchase_type: self.test_purchase.then_some(0),
            acknowledgement_state: u8::from(self.acknowledged),
            purchase_token: self.token.clone(),
            product_id: self.product_id.clone(),
            quantity: self.quantity,
            refundable_quantity: if self.refunded_at.is_some() {
                0
            } else {
                self.quantity
            },
            obfuscated_external_account_id: self.obfuscated_account_id.clone(),
            obfuscated_external_profile_id: self.obfuscated_profile_id.clone(),
            region_code: self.region_code.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_become_units_and_nanos() {
        assert_eq!(
            money(4_990_000, "EUR"),
            Money {
                currency_code: "EUR".into(),
                units: "4".into(),
                nanos: 990_000_000
            }
        );
        assert_eq!(money(12_000_000, "USD").nanos, 0);
    }
}
