//! Notifications from payment providers. Each is verified, recognised when seen before,
//! and applied by re-reading the object it names from the provider (so an old or
//! reordered notification never rolls state back).

use super::{Core, CoreError};
use crate::core::model::{PaymentProvider, Transaction, TransactionKind};
use crate::providers::stripe::{
    Event, EventObject, ObjectReference, PaymentIntent, SignatureError, metadata, verify_signature,
};

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    /// Its id was seen before; nothing changed.
    Replayed,
    /// A type boxoffice does not act on.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature refused: {0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl Core {
    /// A Stripe webhook: `Stripe-Signature` checked against the endpoint secret with the
    /// Clock's now, the intent or charge re-read and settled, the event id remembered. A
    /// renewal the billing clock has in hand is acknowledged without either.
    pub async fn stripe_webhook(
        &self,
        signature: Option<&str>,
        payload: &[u8],
    ) -> Result<WebhookOutcome, WebhookError> {
        let stripe = self.stripe()?;
        let settings = stripe.settings();
        verify_signature(
            signature,
            payload,
            &settings.webhook_secret,
            self.now(),
            settings.webhook_tolerance_seconds,
        )?;
        let event = Event::parse(payload).map_err(WebhookError::Malformed)?;
        let (seen, renewal_in_hand) = match &event.object {
            EventObject::PaymentIntent(intent)
                if let Some((subscription, period)) = renewal_of(intent) =>
            {
                if self.renewals_in_hand.contains(subscription, period) {
                    // This process is charging it or has recorded it as paid: in hand, and
                    // nothing this event could change (see below).
                    return Ok(WebhookOutcome::Applied);
                }
                let notice = self
                    .store
                    .renewal_notice(
                        PaymentProvider::Stripe,
                        &event.id,
                        subscription,
                        period,
                        self.now(),
                    )
                    .await
                    .map_err(CoreError::from)?;
                (notice.seen, notice.in_hand)
            }
            _ => {
                let seen = self
                    .store
                    .event_seen(PaymentProvider::Stripe, &event.id)
                    .await
                    .map_err(CoreError::from)?;
                (seen, false)
            }
        };
        if seen {
            return Ok(WebhookOutcome::Replayed);
        }
        if renewal_in_hand {
            // The usual case: the worker has Stripe's answer before the webhook arrives, or
            // is charging and will record it. Either way Stripe need not be asked again, and
            // the event id need not be remembered: the renewal's period is the record, so a
            // replay finds it in hand too and changes nothing. Not writing here keeps one
            // write per renewal off the single writer.
            return Ok(WebhookOutcome::Applied);
        }
        // Boxed: a few kilobytes of state that only this path needs, which the usual event
        // (a renewal in hand) would otherwise carry, and every layer of the HTTP server
        // copy, on each delivery.
        let outcome = Box::pin(self.apply_stripe_event(&event)).await?;
        self.store
            .remember_event(
                PaymentProvider::Stripe,
                &event.id,
                &event.event_type,
                self.now(),
            )
            .await
            .map_err(CoreError::from)?;
        Ok(outcome)
    }

    /// Acts on an event by what Stripe says now of the object it names.
    async fn apply_stripe_event(&self, event: &Event) -> Result<WebhookOutcome, CoreError> {
        Ok(match &event.object {
            EventObject::PaymentIntent(intent) => {
                let intent = self.fresh_payment_intent(&intent.id).await?;
                self.settle_payment_intent(&intent, Some(&event.id)).await?;
                WebhookOutcome::Applied
            }
            EventObject::SetupIntent(intent) => {
                let intent = self
                    .stripe()?
                    .setup_intent(&intent.id)
                    .await
                    .map_err(|error| CoreError::ProviderUnavailable {
                        provider: "Stripe",
                        detail: error.to_string(),
                    })?;
                self.settle_setup_intent(&intent).await?;
                WebhookOutcome::Applied
            }
            EventObject::Charge(charge) if event.event_type == "charge.refunded" => {
                self.settle_refunds(&charge.id).await?;
                WebhookOutcome::Applied
            }
            EventObject::Charge(_) | EventObject::Other => WebhookOutcome::Ignored,
        })
    }

    async fn fresh_payment_intent(&self, id: &str) -> Result<PaymentIntent, CoreError> {
        self.stripe()?
            .payment_intent(id)
            .await
            .map_err(|error| CoreError::ProviderUnavailable {
                provider: "Stripe",
                detail: error.to_string(),
            })
    }

    /// Records the refunds of a charge we took, and ends the subscription it paid for once
    /// the charge is refunded in full.
    async fn settle_refunds(&self, charge_id: &str) -> Result<(), CoreError> {
        let Some(payment) = self
            .store
            .payment_by_external_id(PaymentProvider::Stripe, charge_id)
            .await?
        else {
            return Ok(());
        };
        let stripe = self.stripe()?;
        let unavailable =
            |error: crate::providers::stripe::StripeClientError| CoreError::ProviderUnavailable {
                provider: "Stripe",
                detail: error.to_string(),
            };
        let charge = stripe.charge(charge_id).await.map_err(unavailable)?;
        let refunds = stripe
            .refunds_of_charge(charge_id)
            .await
            .map_err(unavailable)?;
        let now = self.now();
        for refund in refunds
            .iter()
            .filter(|refund| refund.status.as_deref() == Some("succeeded"))
        {
            let transaction = Transaction {
                id: Transaction::new_id(),
                customer_id: payment.customer_id.clone(),
                subscription_id: payment.subscription_id.clone(),
                basket_id: payment.basket_id.clone(),
                kind: TransactionKind::Refund,
                provider: PaymentProvider::Stripe,
                external_id: refund.id.clone(),
                reference: refund.id.clone(),
                description: format!("Refund: {}", payment.description),
                amount: crate::core::model::Money {
                    minor_units: -refund.amount,
                    currency: payment.amount.currency,
                },
                succeeded: true,
                provider_message: None,
                period: payment.period,
                created_at: now,
            };
            self.store.record_transaction(&transaction).await?;
        }
        if charge.refunded
            && let Some(subscription_id) = &payment.subscription_id
            && let Some(subscription) = self.store.subscription(subscription_id).await?
        {
            self.refund_subscription(&subscription).await?;
        }
        Ok(())
    }
}

/// The subscription and period a renewal's intent pays for, from its metadata.
fn renewal_of(intent: &ObjectReference) -> Option<(&str, i64)> {
    let subscription = intent.metadata.get(metadata::SUBSCRIPTION)?;
    let period = intent.metadata.get(metadata::PERIOD)?.parse().ok()?;
    Some((subscription, period))
}
