//! The Amazon Appstore: the client the core verifies receipts with through the Receipt
//! Verification Service and reads Real-time Notifications with (`client.rs`), Amazon's JSON
//! (`wire.rs`), and the checking of what Amazon SNS signs (`sns.rs`).
//!
//! For the integrator: build an [`AmazonClient`] from [`AmazonSettings`] (RVS's two base
//! URLs, the shared secret, the environments served, the app's package name, the SNS topics
//! and URL prefixes trusted); verify a purchase with [`AmazonClient::subscription`] (the
//! `userId` and `receiptId` the app got in its `PurchaseResponse`); on the notification
//! endpoint, pass the request's headers and body to [`AmazonClient::read_notification`] and
//! then
//! - for [`AmazonNotificationContent::SubscriptionConfirmation`], call
//!   [`AmazonClient::confirm_subscription`] (nothing is delivered until it is confirmed);
//! - for [`AmazonNotificationContent::Receipt`], read the receipt again with
//!   [`AmazonClient::subscription`] and mirror it (deduplicate on
//!   [`AmazonNotification::id`], SNS's `MessageId`);
//! - answer 2xx, or 5xx for [`AmazonNotificationError::Unavailable`] so that SNS retries (SNS
//!   does not retry a 4xx).

mod client;
mod sns;
mod wire;

pub use client::{
    AMAZON_RVS_PRODUCTION, AMAZON_RVS_SANDBOX, AWS_SNS_URL_PREFIX, AmazonClient,
    AmazonNotification, AmazonNotificationContent, AmazonNotificationError, AmazonReceiptEvent,
    AmazonSettings, DEFAULT_NOTIFICATION_MAX_AGE, SnsConfirmation,
};
pub use sns::SNS_CERTIFICATE_NAME;
