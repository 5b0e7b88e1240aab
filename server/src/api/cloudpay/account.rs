//! The customer's account, viewing history and DRM checks.

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, Tags};

use super::CloudPay;
use super::auth::CloudPayAuth;
use super::error::CloudPayError;
use super::wire::{
    Account, AccountPatch, CancellationRequest, DrmValidation, Order, ResumeEntry, ResumeList,
    TransactionEntry, TransactionList,
};
use crate::core::model::SortOrder;
use crate::core::{AccountChanges, CustomFieldChange};

#[derive(Tags)]
enum AccountTags {
    /// The customer's own account.
    Account,
    /// Playback: what the customer watched and may watch.
    Playback,
}

#[derive(ApiResponse)]
enum CancellationAccepted {
    /// The subscription is cancelled (now, or at the end of its period).
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
enum AccountUpdated {
    /// Updated; the account without its subscriptions.
    #[oai(status = 202)]
    Accepted(Json<Account>),
}

pub(crate) struct AccountApi(pub(crate) Arc<CloudPay>);

#[OpenApi]
impl AccountApi {
    /// Return my account details
    ///
    /// The customer's email, names, custom fields (with their UUIDs for updates), billing
    /// details, subscriptions and entitlements.
    #[oai(
        path = "/api/v1/account",
        method = "get",
        tag = "AccountTags::Account",
        operation_id = "get-api-v1-account"
    )]
    async fn account(
        &self,
        auth: CloudPayAuth,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<Json<Account>, CloudPayError> {
        let view = self.0.core.account(&auth.credential()?).await?;
        Ok(Json(Account::from_view(&view, true)))
    }

    /// Update my account details
    ///
    /// Changes `FirstName`, `LastName` and custom fields (by their `Id`). The email belongs to
    /// the identity provider and cannot be changed here. A request with any invalid part
    /// changes nothing.
    #[oai(
        path = "/api/v1/account",
        method = "patch",
        tag = "AccountTags::Account",
        operation_id = "put-api-v1-account"
    )]
    async fn update_account(
        &self,
        auth: CloudPayAuth,
        body: Json<AccountPatch>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<AccountUpdated, CloudPayError> {
        let patch = body.0;
        let changes = AccountChanges {
            first_name: patch.first_name.map(String::from),
            last_name: patch.last_name.map(String::from),
            email: patch.email_address.map(String::from),
            custom_fields: patch
                .custom_fields
                .unwrap_or_default()
                .into_iter()
                .map(|field| CustomFieldChange {
                    id: field.id.into(),
                    value: field.value.map(String::from),
                })
                .collect(),
        };
        let view = self
            .0
            .core
            .update_account(&auth.credential()?, changes)
            .await?;
        Ok(AccountUpdated::Accepted(Json(Account::from_view(
            &view, false,
        ))))
    }

    /// Return my transactions
    ///
    /// Payments, failed attempts (`Status: -1` with the provider's `ProviderMessage`),
    /// renewals and refunds (negative `Amount`), newest first unless `order=asc`; `page`
    /// starts at 1, `size` is 1 to 100 (default 20).
    #[oai(
        path = "/api/v1/account/transactions",
        method = "get",
        tag = "AccountTags::Account",
        operation_id = "get-api-v1-account-transactions"
    )]
    async fn transactions(
        &self,
        auth: CloudPayAuth,
        order: Query<Option<Order>>,
        page: Query<Option<u64>>,
        size: Query<Option<u64>>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<Json<TransactionList>, CloudPayError> {
        let order = order.0.unwrap_or(Order::Desc);
        let sort = match order {
            Order::Asc => SortOrder::Ascending,
            Order::Desc => SortOrder::Descending,
        };
        let page = self
            .0
            .core
            .transactions(
                &auth.credential()?,
                sort,
                page.0.unwrap_or(1),
                size.0.unwrap_or(20),
            )
            .await?;
        Ok(Json(TransactionList {
            page: page.page,
            size: page.size,
            sort: order,
            transactions: page
                .transactions
                .iter()
                .map(TransactionEntry::from)
                .collect(),
        }))
    }

    /// Cancel a subscription
    ///
    /// Cancels one of the caller's subscriptions by its customer subscription id
    /// (`Subscriptions[].Id` in the account, not the package id): at the end of the period
    /// already paid for (access continues until then) or, with `immediate: true`, now.
    /// Another customer's subscription is refused with 403.
    #[oai(
        path = "/api/v1/account/cancellation",
        method = "post",
        tag = "AccountTags::Account",
        operation_id = "post-api-v1-account-cancellation"
    )]
    async fn cancellation(
        &self,
        auth: CloudPayAuth,
        body: Json<CancellationRequest>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<CancellationAccepted, CloudPayError> {
        let request = body.0;
        let reason: String = request.reason.into();
        if reason.trim().is_empty() {
            return Err(CloudPayError::bad_request("reason must not be empty"));
        }
        self.0
            .core
            .cancel_subscription(
                &auth.credential()?,
                request.customer_subscription_id.as_ref(),
                reason.trim(),
                request.immediate.unwrap_or(false),
            )
            .await?;
        Ok(CancellationAccepted::Accepted)
    }

    /// Continue watching
    ///
    /// The entries the customer played, newest first unless `order=asc`; `page` starts at 1,
    /// `size` is 1 to 100 (default 20).
    #[oai(
        path = "/api/v1/resume",
        method = "get",
        tag = "AccountTags::Playback",
        operation_id = "get-user-userId-entries"
    )]
    async fn resume(
        &self,
        auth: CloudPayAuth,
        order: Query<Option<Order>>,
        page: Query<Option<u64>>,
        size: Query<Option<u64>>,
    ) -> Result<Json<ResumeList>, CloudPayError> {
        let order = order.0.unwrap_or(Order::Desc);
        let sort = match order {
            Order::Asc => SortOrder::Ascending,
            Order::Desc => SortOrder::Descending,
        };
        let page = self
            .0
            .core
            .resume(
                &auth.credential()?,
                sort,
                page.0.unwrap_or(1),
                size.0.unwrap_or(20),
            )
            .await?;
        Ok(Json(ResumeList {
            page: page.page,
            size: page.size,
            order,
            entries: page.views.iter().map(ResumeEntry::from).collect(),
        }))
    }

    /// Validate DRM access
    ///
    /// For a DRM licence server: may this customer play this entry now? Granted when the
    /// customer exists, has a live session and holds an entitlement.
    #[oai(
        path = "/api/v1/validatedrm/:entryId/:customerId",
        method = "get",
        tag = "AccountTags::Playback",
        operation_id = "validate-drm"
    )]
    async fn validate_drm(
        &self,
        #[oai(name = "entryId")] entry_id: Path<String>,
        #[oai(name = "customerId")] customer_id: Path<String>,
    ) -> Result<Json<DrmValidation>, CloudPayError> {
        let decision = self
            .0
            .core
            .validate_drm(&entry_id.0, &customer_id.0)
            .await?;
        Ok(Json(DrmValidation {
            granted: decision.granted,
            reason: decision.reason,
        }))
    }
}
