//! The App Store's HTTP API, once per environment: the App Store Server API (`/inApps/...`)
//! and the legacy `verifyReceipt`. Each operation checks the bearer token, reads its
//! parameters as Apple does, and answers from the records as they are now (signed now).
//!
//! Errors are Apple's `{"errorCode", "errorMessage"}` with `Content-Type: application/json`
//! exactly (Apple's libraries read an error body only under that type, and poem-openapi's
//! own JSON adds a charset); a missing or refused token is a plain 401; anything the
//! framework refuses before an operation runs (a parameter it cannot read) is Apple's
//! general bad request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, ToJSON, Type};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
    OpenApiService, SecurityScheme, ServerObject, Tags,
};
use uuid::Uuid;

use super::AppleSimulator;
use super::error::{ApiError, ErrorCode};
use super::notifications::{
    NewNotification, NotificationRecord, NotificationState, SendAttemptResult,
};
use super::payloads::app_apple_id;
use super::receipt::{self, ReceiptStatus, VerifyReceiptRequest, VerifyReceiptResponse};
use super::state::{Environment, NotificationType, Transaction};

/// Transactions and notifications per page, as Apple.
const PAGE_SIZE: usize = 20;

const SERVICE_DESCRIPTION: &str = "A stateful, offline fake of the App Store for one app's \
auto-renewable subscriptions: the App Store Server API (production at this base URL, the \
sandbox at `/sandbox`, the same routes under each) and the legacy `verifyReceipt`. Requests \
are authorised with an ES256 bearer token signed with a configured in-app purchase key \
(`kid`, claims `iss`, `aud` `appstoreconnect-v1`, `bid`, `exp` at most 60 minutes ahead). \
Signed data is a JWS with `x5c` [leaf, intermediate, root] chaining to the simulator's root \
certificate, `GET /root.cer` (DER) or `GET /root.pem`. Errors are Apple's \
`{\"errorCode\", \"errorMessage\"}`; a missing or refused token is a plain 401.";

#[derive(Tags)]
enum AppleTag {
    /// The App Store Server API: transactions and subscriptions.
    AppStoreServerApi,
    /// The App Store Server API: notifications.
    Notifications,
    /// The legacy receipt verification endpoint.
    VerifyReceipt,
}

/// The bearer token of the App Store Server API.
#[derive(SecurityScheme)]
#[oai(
    ty = "bearer",
    bearer_format = "JWT",
    rename = "AppStoreServerApiToken"
)]
struct ApiToken(Bearer);

/// JSON with `Content-Type: application/json` exactly.
pub struct AppleJson<T>(pub T);

impl<T: Type> Payload for AppleJson<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ToJSON> IntoResponse for AppleJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("application/json")
            .body(self.0.to_json_string())
    }
}

/// Apple's error body.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct ErrorPayload {
    pub error_code: u32,
    pub error_message: String,
}

/// Every answer of the App Store Server API.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "refused_before_dispatch")]
pub enum Answer<T: ToJSON> {
    /// The answer; signed data in it is signed now.
    #[oai(status = 200)]
    Ok(AppleJson<T>),
    /// A malformed parameter (`InvalidTransactionIdError` 4000006, …).
    #[oai(status = 400)]
    BadRequest(AppleJson<ErrorPayload>),
    /// No bearer token, or one the API does not accept. No body.
    #[oai(status = 401)]
    Unauthorized,
    /// Not found (`TransactionIdNotFoundError` 4040010, …).
    #[oai(status = 404)]
    NotFound(AppleJson<ErrorPayload>),
}

impl<T: ToJSON> From<Result<T, ApiError>> for Answer<T> {
    fn from(result: Result<T, ApiError>) -> Self {
        match result {
            Ok(value) => Self::Ok(AppleJson(value)),
            Err(ApiError::Unauthenticated) => Self::Unauthorized,
            Err(ApiError::Coded(code)) => {
                let (error_code, error_message) = code.body();
                let body = AppleJson(ErrorPayload {
                    error_code,
                    error_message: error_message.to_owned(),
                });
                if code.status() == 404 {
                    Self::NotFound(body)
                } else {
                    Self::BadRequest(body)
                }
            }
        }
    }
}

fn refused_before_dispatch<T: ToJSON>(error: poem::Error) -> Answer<T> {
    if error.status() == StatusCode::UNAUTHORIZED {
        Answer::Unauthorized
    } else {
        Err(ApiError::Coded(ErrorCode::GeneralBadRequest)).into()
    }
}

/// `verifyReceipt` always answers 200.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "unreadable_receipt_request")]
pub enum VerifyReceiptAnswer {
    /// `status` 0 with the receipt, or Apple's error status.
    #[oai(status = 200)]
    Ok(AppleJson<VerifyReceiptResponse>),
}

fn unreadable_receipt_request(_: poem::Error) -> VerifyReceiptAnswer {
    VerifyReceiptAnswer::Ok(AppleJson(VerifyReceiptResponse::status(
        ReceiptStatus::UnreadableRequest,
    )))
}

/// The body of `verifyReceipt`, read as bytes whatever its content type (clients often send
/// none) and parsed by the operation, so that anything unreadable is answered with status
/// 21000 instead of an HTTP error.
pub struct ReceiptRequestBody(Vec<u8>);

impl<'a> ApiExtractor<'a> for ReceiptRequestBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        VerifyReceiptRequest::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some(
                "The receipt, the shared secret and whether to leave out old transactions.",
            ),
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: VerifyReceiptRequest::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(
            <Vec<u8> as FromRequest>::from_request(request, body).await?,
        ))
    }
}

/// `GET /inApps/v1/transactions/{transactionId}`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct TransactionInfoResponse {
    pub signed_transaction_info: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct LastTransactionsItem {
    pub original_transaction_id: String,
    /// 1 active, 2 expired, 3 billing retry, 4 grace period, 5 revoked.
    pub status: u8,
    pub signed_transaction_info: String,
    pub signed_renewal_info: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct SubscriptionGroupIdentifierItem {
    pub subscription_group_identifier: String,
    pub last_transactions: Vec<LastTransactionsItem>,
}

/// `GET /inApps/v1/subscriptions/{transactionId}`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct StatusResponse {
    pub environment: Environment,
    /// Absent in the sandbox.
    #[oai(skip_serializing_if_is_none)]
    pub app_apple_id: Option<i64>,
    pub bundle_id: String,
    pub data: Vec<SubscriptionGroupIdentifierItem>,
}

/// `GET /inApps/v{1,2}/history/{transactionId}`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct HistoryResponse {
    /// Pass back as `revision` for the next page.
    pub revision: String,
    pub has_more: bool,
    pub bundle_id: String,
    /// Absent in the sandbox.
    #[oai(skip_serializing_if_is_none)]
    pub app_apple_id: Option<i64>,
    pub environment: Environment,
    pub signed_transactions: Vec<String>,
}

/// `POST /inApps/v1/notifications/test`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct SendTestNotificationResponse {
    pub test_notification_token: String,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct SendAttemptItem {
    pub attempt_date: i64,
    pub send_attempt_result: SendAttemptResult,
}

/// `GET /inApps/v1/notifications/test/{testNotificationToken}`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct CheckTestNotificationResponse {
    pub signed_payload: String,
    pub send_attempts: Vec<SendAttemptItem>,
}

/// The body of `POST /inApps/v1/notifications/history`.
#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct NotificationHistoryRequest {
    /// Milliseconds since the epoch; notifications signed at or after it.
    pub start_date: Option<i64>,
    /// Milliseconds since the epoch; notifications signed before it.
    pub end_date: Option<i64>,
    pub notification_type: Option<String>,
    pub notification_subtype: Option<String>,
    /// Any transaction id of a customer: only that customer's notifications.
    pub transaction_id: Option<String>,
    /// Only notifications not (yet) delivered.
    pub only_failures: Option<bool>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct NotificationHistoryResponseItem {
    pub signed_payload: String,
    pub send_attempts: Vec<SendAttemptItem>,
}

#[derive(Object, Debug, Clone)]
#[oai(rename_all = "camelCase")]
pub struct NotificationHistoryResponse {
    /// Pass back as `paginationToken` for the next page, while `hasMore`.
    #[oai(skip_serializing_if_is_none)]
    pub pagination_token: Option<String>,
    pub has_more: bool,
    pub notification_history: Vec<NotificationHistoryResponseItem>,
}

/// The API of one environment.
pub(super) struct AppStoreApi {
    simulator: AppleSimulator,
    environment: Environment,
}

/// The service of one environment, documented with both environments' servers.
pub(super) fn service(
    simulator: AppleSimulator,
    environment: Environment,
) -> OpenApiService<AppStoreApi, ()> {
    let base = simulator.config().public_base_url.clone();
    OpenApiService::new(
        AppStoreApi {
            simulator,
            environment,
        },
        "boxoffice App Store simulator",
        env!("CARGO_PKG_VERSION"),
    )
    .description(SERVICE_DESCRIPTION)
    .server(
        ServerObject::new(base.clone())
            .description("Production (api.storekit.itunes.apple.com, buy.itunes.apple.com)"),
    )
    .server(
        ServerObject::new(format!("{base}/sandbox")).description(
            "Sandbox (api.storekit-sandbox.itunes.apple.com, sandbox.itunes.apple.com)",
        ),
    )
}

/// Apple's ids are digits.
fn check_id(id: &str) -> Result<(), ApiError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|byte| byte.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ErrorCode::InvalidTransactionId.into())
    }
}

/// A time in milliseconds since the epoch, as a query parameter.
fn millis_parameter(
    text: Option<&str>,
    invalid: ErrorCode,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|text| {
        text.parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or(ApiError::Coded(invalid))
    })
    .transpose()
}

fn page_token(prefix: &str, position: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{prefix}.{position}"))
}

fn read_page_token(prefix: &str, token: &str) -> Option<String> {
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    decoded
        .strip_prefix(prefix)?
        .strip_prefix('.')
        .map(str::to_owned)
}

/// The filters of a transaction history request.
struct HistoryQuery {
    revision: Option<u64>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    product_ids: Vec<String>,
    auto_renewable_wanted: bool,
    descending: bool,
    groups: Vec<String>,
    purchased_wanted: bool,
    revoked: Option<bool>,
}

impl HistoryQuery {
    #[allow(clippy::too_many_arguments)]
    fn read(
        revision: Option<String>,
        start_date: Option<String>,
        end_date: Option<String>,
        product_ids: Option<Vec<String>>,
        product_types: Option<Vec<String>>,
        sort: Option<String>,
        groups: Option<Vec<String>>,
        ownership: Option<String>,
        revoked: Option<String>,
    ) -> Result<Self, ApiError> {
        let revision = revision
            .map(|token| {
                read_page_token("h1", &token)
                    .and_then(|position| position.parse::<u64>().ok())
                    .ok_or(ApiError::Coded(ErrorCode::InvalidRequestRevision))
            })
            .transpose()?;
        let start = millis_parameter(start_date.as_deref(), ErrorCode::InvalidStartDate)?;
        let end = millis_parameter(end_date.as_deref(), ErrorCode::InvalidEndDate)?;
        if let (Some(start), Some(end)) = (start, end)
            && start >= end
        {
            return Err(ErrorCode::StartDateAfterEndDate.into());
        }
        let product_types = product_types.unwrap_or_default();
        const PRODUCT_TYPES: [&str; 4] = [
            "AUTO_RENEWABLE",
            "NON_RENEWABLE",
            "CONSUMABLE",
            "NON_CONSUMABLE",
        ];
        if product_types
            .iter()
            .any(|product_type| !PRODUCT_TYPES.contains(&product_type.as_str()))
        {
            return Err(ErrorCode::InvalidProductType.into());
        }
        let descending = match sort.as_deref() {
            None | Some("ASCENDING") => false,
            Some("DESCENDING") => true,
            Some(_) => return Err(ErrorCode::InvalidSort.into()),
        };
        let purchased_wanted = match ownership.as_deref() {
            None | Some("PURCHASED") => true,
            Some("FAMILY_SHARED") => false,
            Some(_) => return Err(ErrorCode::InvalidInAppOwnershipType.into()),
        };
        // Python's client sends `str(True)`: `True` / `False`.
        let revoked = match revoked.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(ErrorCode::InvalidRevoked.into()),
        };
        Ok(Self {
            revision,
            start,
            end,
            product_ids: product_ids.unwrap_or_default(),
            auto_renewable_wanted: product_types.is_empty()
                || product_types.iter().any(|kind| kind == "AUTO_RENEWABLE"),
            descending,
            groups: groups.unwrap_or_default(),
            purchased_wanted,
            revoked,
        })
    }

    fn keeps(&self, transaction: &Transaction) -> bool {
        self.start
            .is_none_or(|start| transaction.purchase_date >= start)
            && self.end.is_none_or(|end| transaction.purchase_date < end)
            && (self.product_ids.is_empty() || self.product_ids.contains(&transaction.product_id))
            && self.auto_renewable_wanted
            && (self.groups.is_empty() || self.groups.contains(&transaction.subscription_group))
            && self.purchased_wanted
            && self
                .revoked
                .is_none_or(|revoked| transaction.revocation.is_some() == revoked)
            && self.revision.is_none_or(|after| {
                if self.descending {
                    transaction.seq < after
                } else {
                    transaction.seq > after
                }
            })
    }
}

fn send_attempts(record: &NotificationRecord) -> Vec<SendAttemptItem> {
    record
        .attempts
        .iter()
        .map(|attempt| SendAttemptItem {
            attempt_date: attempt.attempted_at.timestamp_millis(),
            send_attempt_result: attempt.send_attempt_result,
        })
        .collect()
}

impl AppStoreApi {
    fn authorize(&self, token: &ApiToken) -> Result<(), ApiError> {
        self.simulator
            .check_token(&token.0.token)
            .map_err(|reason| {
                tracing::debug!(%reason, "App Store Server API token refused");
                ApiError::Unauthenticated
            })
    }

    fn transaction_info(&self, transaction_id: &str) -> Result<TransactionInfoResponse, ApiError> {
        check_id(transaction_id)?;
        let now = self.simulator.now();
        let shared = self.simulator.lock();
        let transaction = shared
            .store
            .transaction(self.environment, transaction_id)
            .ok_or(ErrorCode::TransactionIdNotFound)?;
        Ok(TransactionInfoResponse {
            signed_transaction_info: self.simulator.renderer(now).transaction(transaction),
        })
    }

    fn statuses(
        &self,
        transaction_id: &str,
        status: Option<Vec<String>>,
    ) -> Result<StatusResponse, ApiError> {
        check_id(transaction_id)?;
        let wanted: Vec<u8> = status
            .unwrap_or_default()
            .iter()
            .map(|status| {
                status
                    .parse::<u8>()
                    .ok()
                    .filter(|status| (1..=5).contains(status))
                    .ok_or(ApiError::Coded(ErrorCode::InvalidStatus))
            })
            .collect::<Result<_, _>>()?;
        let now = self.simulator.now();
        let renderer = self.simulator.renderer(now);
        let shared = self.simulator.lock();
        let store = &shared.store;
        let customer = store
            .customer_named_by(self.environment, transaction_id)
            .ok_or(ErrorCode::TransactionIdNotFound)?;
        let mut data: Vec<SubscriptionGroupIdentifierItem> = Vec::new();
        for subscription in store.customer_subscriptions(self.environment, customer) {
            let status = subscription.phase.status();
            if !wanted.is_empty() && !wanted.contains(&status) {
                continue;
            }
            let Some(latest) =
                store.transaction(self.environment, subscription.latest_transaction_id())
            else {
                continue;
            };
            data.push(SubscriptionGroupIdentifierItem {
                subscription_group_identifier: subscription.subscription_group.clone(),
                last_transactions: vec![LastTransactionsItem {
                    original_transaction_id: subscription.original_transaction_id.clone(),
                    status,
                    signed_transaction_info: renderer.transaction(latest),
                    signed_renewal_info: renderer.renewal_info(store, subscription),
                }],
            });
        }
        Ok(StatusResponse {
            environment: self.environment,
            app_apple_id: app_apple_id(self.simulator.config(), self.environment),
            bundle_id: self.simulator.config().bundle_id.clone(),
            data,
        })
    }

    fn history(
        &self,
        transaction_id: &str,
        query: HistoryQuery,
    ) -> Result<HistoryResponse, ApiError> {
        check_id(transaction_id)?;
        let now = self.simulator.now();
        let renderer = self.simulator.renderer(now);
        let shared = self.simulator.lock();
        let store = &shared.store;
        let customer = store
            .customer_named_by(self.environment, transaction_id)
            .ok_or(ErrorCode::TransactionIdNotFound)?;
        let mut kept: Vec<&Transaction> = store
            .customer_transactions(self.environment, customer)
            .filter(|transaction| query.keeps(transaction))
            .collect();
        if query.descending {
            kept.reverse();
        }
        let has_more = kept.len() > PAGE_SIZE;
        kept.truncate(PAGE_SIZE);
        let position = kept
            .last()
            .map(|transaction| transaction.seq)
            .or(query.revision)
            .unwrap_or(if query.descending { u64::MAX } else { 0 });
        Ok(HistoryResponse {
            revision: page_token("h1", &position.to_string()),
            has_more,
            bundle_id: self.simulator.config().bundle_id.clone(),
            app_apple_id: app_apple_id(self.simulator.config(), self.environment),
            environment: self.environment,
            signed_transactions: kept
                .into_iter()
                .map(|transaction| renderer.transaction(transaction))
                .collect(),
        })
    }

    async fn request_test_notification(&self) -> Result<SendTestNotificationResponse, ApiError> {
        let now = self.simulator.now();
        let (token, uuid) = {
            let mut shared = self.simulator.lock();
            if shared.notification_urls.get(self.environment).is_none() {
                return Err(ErrorCode::ServerNotificationUrlNotFound.into());
            }
            let signed = self
                .simulator
                .renderer(now)
                .test_notification(self.environment);
            let uuid = signed.notification_uuid;
            shared.notifications.record(
                NewNotification {
                    notification_uuid: uuid,
                    environment: self.environment,
                    notification_type: NotificationType::Test.as_str().to_owned(),
                    subtype: None,
                    original_transaction_id: None,
                    transaction_id: None,
                    signed_payload: signed.signed_payload,
                },
                true,
                now,
            );
            let token = format!("{uuid}_{}", now.timestamp_millis());
            shared.test_notifications.insert(token.clone(), uuid);
            (token, uuid)
        };
        self.simulator.deliver_caused(&[uuid]).await;
        Ok(SendTestNotificationResponse {
            test_notification_token: token,
        })
    }

    fn test_notification_status(
        &self,
        token: &str,
    ) -> Result<CheckTestNotificationResponse, ApiError> {
        let well_formed = token.split_once('_').is_some_and(|(uuid, millis)| {
            Uuid::parse_str(uuid).is_ok() && millis.parse::<i64>().is_ok()
        });
        if !well_formed {
            return Err(ErrorCode::InvalidTestNotificationToken.into());
        }
        let shared = self.simulator.lock();
        let record = shared
            .test_notifications
            .get(token)
            .and_then(|uuid| shared.notifications.get(*uuid))
            .filter(|record| record.environment == self.environment)
            .ok_or(ErrorCode::TestNotificationNotFound)?;
        Ok(CheckTestNotificationResponse {
            signed_payload: record.signed_payload.clone(),
            send_attempts: send_attempts(record),
        })
    }

    fn notification_history(
        &self,
        pagination_token: Option<&str>,
        request: NotificationHistoryRequest,
    ) -> Result<NotificationHistoryResponse, ApiError> {
        let start = request
            .start_date
            .and_then(DateTime::from_timestamp_millis)
            .ok_or(ErrorCode::InvalidStartDate)?;
        let end = request
            .end_date
            .and_then(DateTime::from_timestamp_millis)
            .ok_or(ErrorCode::InvalidEndDate)?;
        if start >= end {
            return Err(ErrorCode::StartDateAfterEndDate.into());
        }
        if let Some(wanted) = &request.notification_type
            && !NotificationType::ALL
                .iter()
                .any(|known| known.as_str() == wanted)
        {
            return Err(ErrorCode::InvalidNotificationType.into());
        }
        let after = pagination_token
            .map(|token| {
                read_page_token("n1", token)
                    .and_then(|uuid| Uuid::parse_str(&uuid).ok())
                    .ok_or(ApiError::Coded(ErrorCode::InvalidPaginationToken))
            })
            .transpose()?;
        if let Some(transaction_id) = &request.transaction_id {
            check_id(transaction_id)?;
        }
        let shared = self.simulator.lock();
        let store = &shared.store;
        let customer = match &request.transaction_id {
            Some(transaction_id) => Some(
                store
                    .customer_named_by(self.environment, transaction_id)
                    .ok_or(ErrorCode::TransactionIdNotFound)?,
            ),
            None => None,
        };
        let mut records = shared.notifications.oldest_first().peekable();
        if let Some(after) = after {
            if shared.notifications.get(after).is_none() {
                return Err(ErrorCode::InvalidPaginationToken.into());
            }
            while records
                .next_if(|record| record.notification_uuid != after)
                .is_some()
            {}
            records.next();
        }
        let mut page: Vec<&NotificationRecord> = records
            .filter(|record| {
                record.environment == self.environment
                    && record.state != NotificationState::Unsent
                    && record.signed_date >= start
                    && record.signed_date < end
                    && request
                        .notification_type
                        .as_ref()
                        .is_none_or(|wanted| &record.notification_type == wanted)
                    && request
                        .notification_subtype
                        .as_ref()
                        .is_none_or(|wanted| record.subtype.as_ref() == Some(wanted))
                    && (request.only_failures != Some(true)
                        || record.state != NotificationState::Delivered)
                    && customer.is_none_or(|customer| {
                        record
                            .original_transaction_id
                            .as_deref()
                            .and_then(|original| store.subscription(original))
                            .is_some_and(|subscription| subscription.customer == customer)
                    })
            })
            .take(PAGE_SIZE + 1)
            .collect();
        let has_more = page.len() > PAGE_SIZE;
        page.truncate(PAGE_SIZE);
        Ok(NotificationHistoryResponse {
            pagination_token: has_more
                .then(|| page.last())
                .flatten()
                .map(|record| page_token("n1", &record.notification_uuid.to_string())),
            has_more,
            notification_history: page
                .into_iter()
                .map(|record| NotificationHistoryResponseItem {
                    signed_payload: record.signed_payload.clone(),
                    send_attempts: send_attempts(record),
                })
                .collect(),
        })
    }

    fn verify_receipt(&self, body: &[u8]) -> VerifyReceiptResponse {
        let request = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .filter(serde_json::Value::is_object)
            .and_then(|value| VerifyReceiptRequest::parse_from_json(Some(value)).ok());
        let Some(request) = request else {
            return VerifyReceiptResponse::status(ReceiptStatus::UnreadableRequest);
        };
        let now = self.simulator.now();
        let shared = self.simulator.lock();
        receipt::verify(
            self.simulator.identity(),
            self.simulator.config(),
            &shared.store,
            self.environment,
            &request,
            now,
        )
    }
}

#[OpenApi]
impl AppStoreApi {
    /// Get Transaction Info
    ///
    /// One transaction of this environment, signed now.
    #[oai(
        path = "/inApps/v1/transactions/:transactionId",
        method = "get",
        operation_id = "getTransactionInfo",
        tag = "AppleTag::AppStoreServerApi"
    )]
    async fn get_transaction_info(
        &self,
        token: ApiToken,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
    ) -> Answer<TransactionInfoResponse> {
        self.authorize(&token)
            .and_then(|()| self.transaction_info(&transaction_id))
            .into()
    }

    /// Get All Subscription Statuses
    ///
    /// The customer's subscriptions (named by any of their transaction ids, original
    /// transaction ids or app transaction id) by subscription group, each with its status,
    /// latest transaction and renewal info; `status` (repeatable, 1–5) keeps some.
    #[oai(
        path = "/inApps/v1/subscriptions/:transactionId",
        method = "get",
        operation_id = "getAllSubscriptionStatuses",
        tag = "AppleTag::AppStoreServerApi"
    )]
    async fn get_all_subscription_statuses(
        &self,
        token: ApiToken,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
        status: Query<Option<Vec<String>>>,
    ) -> Answer<StatusResponse> {
        self.authorize(&token)
            .and_then(|()| self.statuses(&transaction_id, status.0))
            .into()
    }

    /// Get Transaction History (v2)
    ///
    /// The customer's transactions, 20 per page, oldest first (`sort=DESCENDING` for newest
    /// first); `revision` from the previous page continues (with the same filters).
    #[oai(
        path = "/inApps/v2/history/:transactionId",
        method = "get",
        operation_id = "getTransactionHistory",
        tag = "AppleTag::AppStoreServerApi"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn get_transaction_history(
        &self,
        token: ApiToken,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
        revision: Query<Option<String>>,
        #[oai(name = "startDate")] start_date: Query<Option<String>>,
        #[oai(name = "endDate")] end_date: Query<Option<String>>,
        #[oai(name = "productId")] product_id: Query<Option<Vec<String>>>,
        #[oai(name = "productType")] product_type: Query<Option<Vec<String>>>,
        sort: Query<Option<String>>,
        #[oai(name = "subscriptionGroupIdentifier")] subscription_group_identifier: Query<
            Option<Vec<String>>,
        >,
        #[oai(name = "inAppOwnershipType")] in_app_ownership_type: Query<Option<String>>,
        revoked: Query<Option<String>>,
    ) -> Answer<HistoryResponse> {
        self.authorize(&token)
            .and_then(|()| {
                HistoryQuery::read(
                    revision.0,
                    start_date.0,
                    end_date.0,
                    product_id.0,
                    product_type.0,
                    sort.0,
                    subscription_group_identifier.0,
                    in_app_ownership_type.0,
                    revoked.0,
                )
            })
            .and_then(|query| self.history(&transaction_id, query))
            .into()
    }

    /// Get Transaction History (v1, deprecated)
    ///
    /// As v2 (the default of Apple's client libraries).
    #[oai(
        path = "/inApps/v1/history/:transactionId",
        method = "get",
        operation_id = "getTransactionHistoryV1",
        tag = "AppleTag::AppStoreServerApi",
        deprecated
    )]
    #[allow(clippy::too_many_arguments)]
    async fn get_transaction_history_v1(
        &self,
        token: ApiToken,
        #[oai(name = "transactionId")] transaction_id: Path<String>,
        revision: Query<Option<String>>,
        #[oai(name = "startDate")] start_date: Query<Option<String>>,
        #[oai(name = "endDate")] end_date: Query<Option<String>>,
        #[oai(name = "productId")] product_id: Query<Option<Vec<String>>>,
        #[oai(name = "productType")] product_type: Query<Option<Vec<String>>>,
        sort: Query<Option<String>>,
        #[oai(name = "subscriptionGroupIdentifier")] subscription_group_identifier: Query<
            Option<Vec<String>>,
        >,
        #[oai(name = "inAppOwnershipType")] in_app_ownership_type: Query<Option<String>>,
        revoked: Query<Option<String>>,
    ) -> Answer<HistoryResponse> {
        self.get_transaction_history(
            token,
            transaction_id,
            revision,
            start_date,
            end_date,
            product_id,
            product_type,
            sort,
            subscription_group_identifier,
            in_app_ownership_type,
            revoked,
        )
        .await
    }

    /// Request a Test Notification
    ///
    /// Sends a `TEST` notification to this environment's notification URL (first attempt
    /// made before the answer); its token reads its status.
    #[oai(
        path = "/inApps/v1/notifications/test",
        method = "post",
        operation_id = "requestTestNotification",
        tag = "AppleTag::Notifications"
    )]
    async fn request_a_test_notification(
        &self,
        token: ApiToken,
    ) -> Answer<SendTestNotificationResponse> {
        match self.authorize(&token) {
            Ok(()) => self.request_test_notification().await.into(),
            Err(error) => Err(error).into(),
        }
    }

    /// Get Test Notification Status
    #[oai(
        path = "/inApps/v1/notifications/test/:testNotificationToken",
        method = "get",
        operation_id = "getTestNotificationStatus",
        tag = "AppleTag::Notifications"
    )]
    async fn get_test_notification_status(
        &self,
        token: ApiToken,
        #[oai(name = "testNotificationToken")] test_notification_token: Path<String>,
    ) -> Answer<CheckTestNotificationResponse> {
        self.authorize(&token)
            .and_then(|()| self.test_notification_status(&test_notification_token))
            .into()
    }

    /// Get Notification History
    ///
    /// The notifications sent (or being sent) in this environment, signed between
    /// `startDate` and `endDate`, oldest first, 20 per page, with every attempt.
    #[oai(
        path = "/inApps/v1/notifications/history",
        method = "post",
        operation_id = "getNotificationHistory",
        tag = "AppleTag::Notifications"
    )]
    async fn get_notification_history(
        &self,
        token: ApiToken,
        #[oai(name = "paginationToken")] pagination_token: Query<Option<String>>,
        body: Json<NotificationHistoryRequest>,
    ) -> Answer<NotificationHistoryResponse> {
        self.authorize(&token)
            .and_then(|()| self.notification_history(pagination_token.0.as_deref(), body.0))
            .into()
    }

    /// verifyReceipt (legacy)
    ///
    /// Validates a StoreKit 1 app receipt. Always HTTP 200; `status` 0 or Apple's error status.
    #[oai(
        path = "/verifyReceipt",
        method = "post",
        operation_id = "verifyReceipt",
        tag = "AppleTag::VerifyReceipt"
    )]
    async fn verify_receipt_endpoint(&self, body: ReceiptRequestBody) -> VerifyReceiptAnswer {
        VerifyReceiptAnswer::Ok(AppleJson(self.verify_receipt(&body.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_refuse_strangers() {
        let token = page_token("h1", "42");
        assert_eq!(read_page_token("h1", &token).as_deref(), Some("42"));
        assert_eq!(read_page_token("n1", &token), None);
        assert_eq!(read_page_token("h1", "not base64!"), None);
    }

    #[test]
    fn history_parameters_are_read_as_apple_reads_them() {
        let read = |sort: Option<&str>, revoked: Option<&str>, start: Option<&str>| {
            HistoryQuery::read(
                None,
                start.map(str::to_owned),
                Some("2000000000000".into()),
                None,
                None,
                sort.map(str::to_owned),
                None,
                None,
                revoked.map(str::to_owned),
            )
        };
        assert!(read(None, Some("True"), None).is_ok_and(|query| query.revoked == Some(true)));
        assert!(read(Some("DESCENDING"), Some("False"), None).is_ok_and(|query| query.descending));
        assert_eq!(
            read(Some("UPWARDS"), None, None).err(),
            Some(ApiError::Coded(ErrorCode::InvalidSort))
        );
        assert_eq!(
            read(None, Some("maybe"), None).err(),
            Some(ApiError::Coded(ErrorCode::InvalidRevoked))
        );
        assert_eq!(
            read(None, None, Some("yesterday")).err(),
            Some(ApiError::Coded(ErrorCode::InvalidStartDate))
        );
        assert_eq!(
            read(None, None, Some("2000000000000")).err(),
            Some(ApiError::Coded(ErrorCode::StartDateAfterEndDate))
        );
        assert_eq!(
            check_id("12a").err(),
            Some(ApiError::Coded(ErrorCode::InvalidTransactionId))
        );
    }
}
