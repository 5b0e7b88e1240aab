//! The Amazon endpoints on the wire: the Receipt Verification Service (production at
//! `/version/...`, the RVS Cloud Sandbox at `/sandbox/version/...`) with Amazon's statuses,
//! and the part of Amazon SNS an HTTP(S) subscriber talks to (`/sns/`): the signing
//! certificate, `ConfirmSubscription` and `Unsubscribe` with SNS's XML answers.

use poem::http::Uri;
use poem::{EndpointExt, IntoEndpoint, Route};
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, OpenApi, OpenApiService, Tags};

use super::error::RvsError;
use super::notifications::{SnsRefusal, Target};
use super::receipts::Environment;
use super::wire::{RvsErrorBody, RvsReceipt};
use super::{AmazonSimulator, RVS_OPERATION_VERSION};

const SERVICE_DESCRIPTION: &str = "A stateful, offline fake of the Amazon Appstore's Receipt \
Verification Service (RVS) for subscriptions — production at `/version/1.0/verifyReceiptId/...`, \
the RVS Cloud Sandbox at `/sandbox/version/1.0/verifyReceiptId/...` — and of the Amazon SNS \
endpoints a Real-time Notifications subscriber uses: the signing certificate named in each \
message's `SigningCertURL`, and the `SubscribeURL` (`ConfirmSubscription`) and `UnsubscribeURL` \
(`Unsubscribe`) it is sent. Purchases are made, and renewals failed, recovered, cancelled or \
refunded, on the simulator's control surface.";

const SNS_NAMESPACE: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

#[derive(Tags)]
enum AmazonTag {
    /// The Receipt Verification Service.
    Rvs,
    /// Amazon SNS, as an HTTP(S) subscriber of the Real-time Notifications topic sees it.
    Sns,
}

/// RVS's answer: the receipt, or one of Amazon's error statuses.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "unreadable_rvs_request")]
pub enum RvsResponse {
    /// The receipt is valid: its details.
    #[oai(status = 200)]
    Ok(Json<Box<RvsReceipt>>),
    /// The receipt id is invalid, or no transaction has it in this environment (a sandbox
    /// receipt asked of production, and the reverse); an unsupported operation version.
    #[oai(status = 400)]
    BadRequest(Json<RvsErrorBody>),
    /// The receipt is no longer valid (revoked): treat it as cancelled.
    #[oai(status = 410)]
    Gone(Json<RvsErrorBody>),
    /// Throttled (only when the control surface asked for it).
    #[oai(status = 429)]
    TooManyRequests(Json<RvsErrorBody>),
    /// Invalid shared secret (production only; the sandbox takes any).
    #[oai(status = 496)]
    InvalidSharedSecret(Json<RvsErrorBody>),
    /// Invalid user id: not the customer the receipt belongs to.
    #[oai(status = 497)]
    InvalidUserId(Json<RvsErrorBody>),
    /// Internal server error (only when the control surface asked for it).
    #[oai(status = 500)]
    InternalServerError(Json<RvsErrorBody>),
    /// Unavailable (only when the control surface asked for it).
    #[oai(status = 503)]
    ServiceUnavailable(Json<RvsErrorBody>),
}

impl From<Result<RvsReceipt, RvsError>> for RvsResponse {
    fn from(result: Result<RvsReceipt, RvsError>) -> Self {
        let error = match result {
            Ok(receipt) => return Self::Ok(Json(Box::new(receipt))),
            Err(error) => error,
        };
        let body = Json(error.body());
        match error.status {
            410 => Self::Gone(body),
            429 => Self::TooManyRequests(body),
            496 => Self::InvalidSharedSecret(body),
            497 => Self::InvalidUserId(body),
            500 => Self::InternalServerError(body),
            status if status >= 500 => Self::ServiceUnavailable(body),
            _ => Self::BadRequest(body),
        }
    }
}

/// A path parameter that cannot be read.
fn unreadable_rvs_request(error: poem::Error) -> RvsResponse {
    Err(RvsError::bad_request(&error.to_string())).into()
}

/// The signing certificate, or not found.
#[derive(ApiResponse)]
pub enum CertificateResponse {
    /// The X.509 certificate, PEM.
    #[oai(status = 200, content_type = "application/x-x509-ca-cert")]
    Ok(PlainText<String>),
    /// No certificate has this name.
    #[oai(status = 404)]
    NotFound(PlainText<String>),
}

/// SNS's XML answer.
#[derive(ApiResponse)]
#[oai(bad_request_handler = "unreadable_sns_request")]
pub enum SnsResponse {
    /// `ConfirmSubscriptionResponse` (with the subscription's ARN) or `UnsubscribeResponse`.
    #[oai(status = 200, content_type = "text/xml")]
    Ok(PlainText<String>),
    /// `ErrorResponse`: `InvalidParameter` (a wrong or expired token, a missing parameter),
    /// `InvalidAction`.
    #[oai(status = 400, content_type = "text/xml")]
    BadRequest(PlainText<String>),
    /// `ErrorResponse`: `NotFound` (no such topic or subscription).
    #[oai(status = 404, content_type = "text/xml")]
    NotFound(PlainText<String>),
}

fn unreadable_sns_request(error: poem::Error) -> SnsResponse {
    SnsResponse::BadRequest(PlainText(sns_error("InvalidParameter", &error.to_string())))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// SNS's `ErrorResponse`.
fn sns_error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{SNS_NAMESPACE}\">\n  <Error>\n    <Type>Sender</Type>\n    \
         <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n\
         </ErrorResponse>\n",
        xml_escape(code),
        xml_escape(message),
        request_id()
    )
}

impl From<SnsRefusal> for SnsResponse {
    fn from(refusal: SnsRefusal) -> Self {
        match refusal {
            SnsRefusal::InvalidParameter(message) => {
                Self::BadRequest(PlainText(sns_error("InvalidParameter", &message)))
            }
            SnsRefusal::NotFound(message) => {
                Self::NotFound(PlainText(sns_error("NotFound", &message)))
            }
        }
    }
}

pub(crate) struct AmazonApi {
    simulator: AmazonSimulator,
}

impl AmazonApi {
    /// `verifyReceiptId` in an environment, on the state brought up to the host's `Now`.
    fn verify(
        &self,
        environment: Environment,
        version: &str,
        shared_secret: &str,
        user_id: &str,
        receipt_id: &str,
    ) -> Result<RvsReceipt, RvsError> {
        let config = self.simulator.config();
        let (result, _) = self.simulator.with_state(|state, _| {
            if let Some(status) = state.fail_next_rvs.take() {
                return Err(match status {
                    429 => RvsError::throttled(),
                    status => RvsError::internal(status),
                });
            }
            if version != RVS_OPERATION_VERSION {
                return Err(RvsError::bad_request(&format!(
                    "Unsupported verifyReceiptId version {version:?}; the current version is {RVS_OPERATION_VERSION}."
                )));
            }
            let secret_ok = match environment {
                Environment::Production => shared_secret == config.shared_secret,
                Environment::Sandbox => !shared_secret.trim().is_empty(),
            };
            if !secret_ok {
                return Err(RvsError::invalid_shared_secret());
            }
            let receipt = state
                .store
                .receipt(receipt_id)
                .ok()
                .filter(|receipt| receipt.environment == environment)
                .ok_or_else(RvsError::invalid_receipt_id)?;
            if receipt.user_id != user_id {
                return Err(RvsError::invalid_user_id());
            }
            if receipt.revoked {
                return Err(RvsError::no_longer_valid());
            }
            Ok(receipt.rvs())
        });
        result
    }
}

pub(crate) fn service(simulator: AmazonSimulator) -> OpenApiService<AmazonApi, ()> {
    let server = simulator.config().public_base_url.clone();
    OpenApiService::new(
        AmazonApi { simulator },
        "Amazon Appstore simulator (Receipt Verification Service and SNS)",
        env!("CARGO_PKG_VERSION"),
    )
    .description(SERVICE_DESCRIPTION)
    .server(server)
}

/// The routes [`AmazonSimulator::endpoint`] serves. SNS's actions are at the root of its
/// host (`https://sns.{region}.amazonaws.com/?Action=…`), here `/sns/`, which is routed to
/// the operation declared at `/sns`.
pub(crate) fn routes(simulator: AmazonSimulator) -> Route {
    let service = service(simulator);
    let spec = service.spec_endpoint();
    let docs = service.swagger_ui();
    let api = service.into_endpoint().before(|mut request| async move {
        if request.uri().path() == "/sns/" {
            let path_and_query = match request.uri().query() {
                Some(query) => format!("/sns?{query}"),
                None => "/sns".to_owned(),
            };
            if let Ok(uri) = Uri::builder().path_and_query(path_and_query).build() {
                *request.uri_mut() = uri;
            }
        }
        Ok(request)
    });
    Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
}

#[OpenApi]
impl AmazonApi {
    /// Verify a receipt (production)
    ///
    /// `verifyReceiptId` on the RVS production server (`https://appstore-sdk.amazon.com`):
    /// the receipt a purchase on the device returned (`PurchaseResponse.getReceipt()
    /// .getReceiptId()`), for the customer who made it (`PurchaseResponse.getUserData()
    /// .getUserId()`), authorised by the developer's shared secret.
    #[oai(
        path = "/version/:version/verifyReceiptId/developer/:sharedSecret/user/:userId/receiptId/:receiptId",
        method = "get",
        operation_id = "verifyReceiptId",
        tag = "AmazonTag::Rvs"
    )]
    async fn verify_production(
        &self,
        /// The operation's version: `1.0`.
        version: Path<String>,
        /// The developer's shared secret (the Developer Console's Shared Key page).
        #[oai(name = "sharedSecret")]
        shared_secret: Path<String>,
        /// The customer's user id in the app.
        #[oai(name = "userId")]
        user_id: Path<String>,
        /// The purchase's receipt id.
        #[oai(name = "receiptId")]
        receipt_id: Path<String>,
    ) -> RvsResponse {
        self.verify(
            Environment::Production,
            &version,
            &shared_secret,
            &user_id,
            &receipt_id,
        )
        .into()
    }

    /// Verify a receipt (RVS Cloud Sandbox)
    ///
    /// `verifyReceiptId` on the RVS Cloud Sandbox
    /// (`https://appstore-sdk.amazon.com/sandbox`): receipts of purchases made with App Tester.
    /// Any non-empty shared secret is accepted; receipts carry `testTransaction: true`.
    #[oai(
        path = "/sandbox/version/:version/verifyReceiptId/developer/:sharedSecret/user/:userId/receiptId/:receiptId",
        method = "get",
        operation_id = "verifyReceiptIdSandbox",
        tag = "AmazonTag::Rvs"
    )]
    async fn verify_sandbox(
        &self,
        version: Path<String>,
        #[oai(name = "sharedSecret")] shared_secret: Path<String>,
        #[oai(name = "userId")] user_id: Path<String>,
        #[oai(name = "receiptId")] receipt_id: Path<String>,
    ) -> RvsResponse {
        self.verify(
            Environment::Sandbox,
            &version,
            &shared_secret,
            &user_id,
            &receipt_id,
        )
        .into()
    }

    /// SNS's signing certificate
    ///
    /// The X.509 certificate (PEM) whose key signs every message: what each message's
    /// `SigningCertURL` names (`SimpleNotificationService-{id}.pem`).
    #[oai(
        path = "/sns/:certificate",
        method = "get",
        operation_id = "getSnsSigningCertificate",
        tag = "AmazonTag::Sns"
    )]
    async fn certificate(&self, certificate: Path<String>) -> CertificateResponse {
        let identity = self.simulator.identity();
        if certificate.0 == identity.file_name() {
            CertificateResponse::Ok(PlainText(identity.certificate_pem().to_owned()))
        } else {
            CertificateResponse::NotFound(PlainText("NoSuchKey".into()))
        }
    }

    /// SNS actions a subscriber is sent
    ///
    /// At `/sns/` (the root of SNS's host) as well as `/sns`.
    ///
    /// `Action=ConfirmSubscription&TopicArn=…&Token=…` (a `SubscribeURL`): confirms the
    /// subscription awaiting the token, or restores an unsubscribed one, and answers its ARN.
    /// `Action=Unsubscribe&SubscriptionArn=…` (an `UnsubscribeURL`): removes the subscription;
    /// SNS sends it an `UnsubscribeConfirmation`. XML, as SNS answers.
    #[oai(
        path = "/sns",
        method = "get",
        operation_id = "snsAction",
        tag = "AmazonTag::Sns"
    )]
    async fn action(
        &self,
        /// `ConfirmSubscription` or `Unsubscribe`.
        #[oai(name = "Action")]
        action: Query<Option<String>>,
        #[oai(name = "TopicArn")] topic_arn: Query<Option<String>>,
        #[oai(name = "Token")] token: Query<Option<String>>,
        #[oai(name = "SubscriptionArn")] subscription_arn: Query<Option<String>>,
    ) -> SnsResponse {
        let missing = |name: &str| {
            SnsResponse::BadRequest(PlainText(sns_error(
                "InvalidParameter",
                &format!("Invalid parameter: {name} is required"),
            )))
        };
        match action.0.as_deref() {
            Some("ConfirmSubscription") => {
                let (Some(topic_arn), Some(token)) = (topic_arn.0, token.0) else {
                    return missing("TopicArn and Token");
                };
                let (confirmed, _) = self.simulator.with_state(|state, now| {
                    state
                        .topic
                        .confirm(&topic_arn, &token, now)
                        .map(|subscription| subscription.arn.clone())
                });
                match confirmed {
                    Ok(arn) => SnsResponse::Ok(PlainText(format!(
                        "<ConfirmSubscriptionResponse xmlns=\"{SNS_NAMESPACE}\">\n  \
                         <ConfirmSubscriptionResult>\n    <SubscriptionArn>{}</SubscriptionArn>\n  \
                         </ConfirmSubscriptionResult>\n  <ResponseMetadata>\n    \
                         <RequestId>{}</RequestId>\n  </ResponseMetadata>\n\
                         </ConfirmSubscriptionResponse>\n",
                        xml_escape(&arn),
                        request_id()
                    ))),
                    Err(refusal) => refusal.into(),
                }
            }
            Some("Unsubscribe") => {
                let Some(subscription_arn) = subscription_arn.0 else {
                    return missing("SubscriptionArn");
                };
                let (sent, _) = self.simulator.with_state(|state, now| {
                    let removed = state.topic.unsubscribe(&subscription_arn)?;
                    Ok::<_, SnsRefusal>(self.simulator.publish_confirmation(
                        &mut state.topic,
                        "UnsubscribeConfirmation",
                        &removed,
                        Target::Endpoint,
                        now,
                    ))
                });
                match sent {
                    Ok(message_id) => {
                        let simulator = self.simulator.clone();
                        tokio::spawn(async move {
                            simulator.deliver_caused(&[message_id]).await;
                        });
                        SnsResponse::Ok(PlainText(format!(
                            "<UnsubscribeResponse xmlns=\"{SNS_NAMESPACE}\">\n  \
                             <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  \
                             </ResponseMetadata>\n</UnsubscribeResponse>\n",
                            request_id()
                        )))
                    }
                    Err(refusal) => refusal.into(),
                }
            }
            Some(other) => SnsResponse::BadRequest(PlainText(sns_error(
                "InvalidAction",
                &format!("The action {other} is not valid for this web service."),
            ))),
            None => missing("Action"),
        }
    }
}
