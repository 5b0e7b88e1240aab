//! The Cognito user pool API on the wire: the AWS JSON 1.1 protocol, its request and
//! response shapes (named and spelled as in Cognito's API reference), its errors, and the
//! pool's JWKS.
//!
//! poem-openapi cannot route on a header, so the API is one documented `POST /` operation:
//! the `X-Amz-Target` header (an enum of the supported targets) picks the operation and the
//! body is `oneOf` the request shapes. The body is read raw and parsed once the target is
//! known, so every failure (unknown target, bad JSON, missing member) is answered the way
//! Cognito answers it: HTTP 400 with `{"__type": ..., "message": ...}`.

use std::collections::{BTreeMap, HashMap};

use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::error::ParseParamError;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::{Json, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::{Example, ParseFromJSON, ToJSON, Type};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, Enum, ExtractParamOptions, Object, OpenApi,
    OpenApiService, Tags, Union,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::SsoSimulator;
use super::error::{CognitoError, CognitoErrorType};
use super::pool::{CodeDelivery, NewUser, User};
use super::tokens::{AccessTokenClaims, SignWith};

/// The AWS JSON 1.1 media type the SDKs send and Cognito answers with.
const AMZ_JSON_1_1: &str = "application/x-amz-json-1.1";

/// A client id in Cognito's shape, for examples.
pub(crate) const EXAMPLE_CLIENT_ID: &str = "3n4b5urk1ft4fl3mg5e62d9ado";
const EXAMPLE_EMAIL: &str = "jane.doe@example.com";
const EXAMPLE_PASSWORD: &str = "Correct-Horse-9";
const EXAMPLE_SUB: &str = "4f1b7c3e-9a52-4c7e-8d5e-1f0f3f6a2b11";
const EXAMPLE_JWT: &str =
    "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJzdWIiOiI0ZjFiN2MzZSJ9.c2lnbmF0dXJl";

const SERVICE_DESCRIPTION: &str = "\
A stateful, offline fake of an **AWS Cognito user pool**, close enough to the real service \
that the official AWS SDKs work against it unchanged: point the SDK's endpoint URL at this \
server (for boto3: `boto3.client(\"cognito-idp\", endpoint_url=..., region_name=...)`).

**Protocol.** AWS JSON 1.1: every call is `POST /` with the header \
`X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>` and a JSON body \
(`Content-Type: application/x-amz-json-1.1`; `application/json` is accepted too). Request \
signatures (SigV4) are ignored. Errors are HTTP 400 with `{\"__type\": \"NotAuthorizedException\", \
\"message\": \"Incorrect username or password.\"}` and the header `x-amzn-ErrorType`.

**The pool.** Users sign in with their email (case-insensitive); a user's internal username \
is its `sub`. Attributes: `email`, `given_name`, `family_name`, `sub`. Password policy: at \
least 8 characters with an upper-case letter, a lower-case letter and a digit. One public \
app client (no secret; a `SecretHash` is ignored) allowing `USER_PASSWORD_AUTH` and \
`REFRESH_TOKEN_AUTH`, with *prevent user existence errors* enabled (the console's default): \
an unknown user signing in gets `NotAuthorizedException`.

**Codes.** Nothing is emailed: confirmation and reset codes (6 digits; 24 hours and 1 hour) \
are read from the simulator's control surface, `GET /sim/control/sso/users/{email}/codes`.

**Tokens.** Id and access tokens carry Cognito's claims and are signed RS256 with the key \
published at `/{userPoolId}/.well-known/jwks.json` (or HS256 with a shared secret when the \
simulator is configured so). `iss` is this server's base URL followed by `/{userPoolId}`, \
so `iss + \"/.well-known/jwks.json\"` is the JWKS, exactly as with Cognito. All times come \
from the host's clock, which simulator mode can move forward.";

#[derive(Tags)]
enum SsoApiTag {
    /// The Cognito user pool API (AWS JSON 1.1), as the AWS SDKs call it.
    CognitoUserPool,
    /// The pool's public signing keys and OpenID configuration.
    UserPoolKeys,
}

/// The operations this pool serves, named as `X-Amz-Target` names them.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "CognitoTarget")]
pub enum CognitoTarget {
    #[oai(rename = "AWSCognitoIdentityProviderService.SignUp")]
    SignUp,
    #[oai(rename = "AWSCognitoIdentityProviderService.ConfirmSignUp")]
    ConfirmSignUp,
    #[oai(rename = "AWSCognitoIdentityProviderService.ResendConfirmationCode")]
    ResendConfirmationCode,
    #[oai(rename = "AWSCognitoIdentityProviderService.InitiateAuth")]
    InitiateAuth,
    #[oai(rename = "AWSCognitoIdentityProviderService.GetUser")]
    GetUser,
    #[oai(rename = "AWSCognitoIdentityProviderService.ForgotPassword")]
    ForgotPassword,
    #[oai(rename = "AWSCognitoIdentityProviderService.ConfirmForgotPassword")]
    ConfirmForgotPassword,
    #[oai(rename = "AWSCognitoIdentityProviderService.GlobalSignOut")]
    GlobalSignOut,
}

// ---------------------------------------------------------------------------------------
// Shapes. Member names, required members and meanings are Cognito's (API version
// 2016-04-18). Members Cognito defines but this pool has no use for (AnalyticsMetadata,
// UserContextData, ...) are accepted and ignored.
// ---------------------------------------------------------------------------------------

/// A user attribute (`AttributeType`).
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "AttributeType", rename_all = "PascalCase")]
pub struct AttributeType {
    /// The attribute's name: `email`, `given_name`, `family_name` (writable), `sub`,
    /// `email_verified` (read-only).
    pub name: String,
    /// The attribute's value.
    #[oai(skip_serializing_if_is_none)]
    pub value: Option<String>,
}

impl AttributeType {
    fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// `SignUp`: registers a user. The `Username` is the user's email.
#[derive(Object, Debug, Clone)]
#[oai(rename = "SignUpRequest", rename_all = "PascalCase", example)]
pub struct SignUpRequest {
    /// The app client's id.
    pub client_id: String,
    /// Ignored: the app client has no secret.
    pub secret_hash: Option<String>,
    /// The user's email address (the pool signs in by email).
    pub username: String,
    /// The password; must satisfy the password policy.
    pub password: Option<String>,
    /// `given_name` and `family_name` (optional); `email`, if sent, is taken from `Username`.
    pub user_attributes: Option<Vec<AttributeType>>,
    /// Ignored (passed to Lambda triggers by Cognito; this pool has none).
    pub validation_data: Option<Vec<AttributeType>>,
    /// Ignored (passed to Lambda triggers by Cognito; this pool has none).
    pub client_metadata: Option<HashMap<String, String>>,
}

impl Example for SignUpRequest {
    fn example() -> Self {
        Self {
            client_id: EXAMPLE_CLIENT_ID.into(),
            secret_hash: None,
            username: EXAMPLE_EMAIL.into(),
            password: Some(EXAMPLE_PASSWORD.into()),
            user_attributes: Some(vec![
                AttributeType::new("email", EXAMPLE_EMAIL),
                AttributeType::new("given_name", "Jane"),
                AttributeType::new("family_name", "Doe"),
            ]),
            validation_data: None,
            client_metadata: None,
        }
    }
}

/// `ConfirmSignUp`: confirms a sign-up with the code the pool "emailed".
#[derive(Object, Debug, Clone)]
#[oai(rename = "ConfirmSignUpRequest", rename_all = "PascalCase", example)]
pub struct ConfirmSignUpRequest {
    /// The app client's id.
    pub client_id: String,
    /// Ignored: the app client has no secret.
    pub secret_hash: Option<String>,
    /// The user's email (or internal username).
    pub username: String,
    /// The 6-digit code; read it from `GET /sim/control/sso/users/{email}/codes`.
    pub confirmation_code: String,
    /// Ignored.
    pub force_alias_creation: Option<bool>,
    /// Ignored.
    pub client_metadata: Option<HashMap<String, String>>,
}

impl Example for ConfirmSignUpRequest {
    fn example() -> Self {
        Self {
            client_id: EXAMPLE_CLIENT_ID.into(),
            secret_hash: None,
            username: EXAMPLE_EMAIL.into(),
            confirmation_code: "123456".into(),
            force_alias_creation: None,
            client_metadata: None,
        }
    }
}

/// `ResendConfirmationCode`: replaces an unconfirmed user's confirmation code.
#[derive(Object, Debug, Clone)]
#[oai(
    rename = "ResendConfirmationCodeRequest",
    rename_all = "PascalCase",
    example
)]
pub struct ResendConfirmationCodeRequest {
    /// The app client's id.
    pub client_id: String,
    /// Ignored: the app client has no secret.
    pub secret_hash: Option<String>,
    /// The user's email (or internal username).
    pub username: String,
    /// Ignored.
    pub client_metadata: Option<HashMap<String, String>>,
}

impl Example for ResendConfirmationCodeRequest {
    fn example() -> Self {
        Self {
            client_id: EXAMPLE_CLIENT_ID.into(),
            secret_hash: None,
            username: EXAMPLE_EMAIL.into(),
            client_metadata: None,
        }
    }
}

/// `InitiateAuth`: signs in (`USER_PASSWORD_AUTH`) or refreshes tokens (`REFRESH_TOKEN_AUTH`).
#[derive(Object, Debug, Clone)]
#[oai(rename = "InitiateAuthRequest", rename_all = "PascalCase", example)]
pub struct InitiateAuthRequest {
    /// `USER_PASSWORD_AUTH` (parameters `USERNAME`, `PASSWORD`) or `REFRESH_TOKEN_AUTH`
    /// (also spelled `REFRESH_TOKEN`; parameter `REFRESH_TOKEN`). Cognito's other flows
    /// (`USER_SRP_AUTH`, `CUSTOM_AUTH`, `USER_AUTH`, the `ADMIN_*` flows) are not enabled
    /// for this app client and are refused with `InvalidParameterException`.
    pub auth_flow: String,
    /// The flow's parameters. `SECRET_HASH` and `DEVICE_KEY` are ignored.
    pub auth_parameters: Option<HashMap<String, String>>,
    /// Ignored.
    pub client_metadata: Option<HashMap<String, String>>,
    /// The app client's id.
    pub client_id: String,
}

impl Example for InitiateAuthRequest {
    fn example() -> Self {
        Self {
            auth_flow: "USER_PASSWORD_AUTH".into(),
            auth_parameters: Some(HashMap::from([
                ("USERNAME".to_owned(), EXAMPLE_EMAIL.to_owned()),
                ("PASSWORD".to_owned(), EXAMPLE_PASSWORD.to_owned()),
            ])),
            client_metadata: None,
            client_id: EXAMPLE_CLIENT_ID.into(),
        }
    }
}

/// `GetUser`: the attributes of the user an access token speaks for.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GetUserRequest", rename_all = "PascalCase", example)]
pub struct GetUserRequest {
    /// An access token from `InitiateAuth`.
    pub access_token: String,
}

impl Example for GetUserRequest {
    fn example() -> Self {
        Self {
            access_token: EXAMPLE_JWT.into(),
        }
    }
}

/// `ForgotPassword`: sends (here: stores) a password reset code.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ForgotPasswordRequest", rename_all = "PascalCase", example)]
pub struct ForgotPasswordRequest {
    /// The app client's id.
    pub client_id: String,
    /// Ignored: the app client has no secret.
    pub secret_hash: Option<String>,
    /// The user's email (or internal username).
    pub username: String,
    /// Ignored.
    pub client_metadata: Option<HashMap<String, String>>,
}

impl Example for ForgotPasswordRequest {
    fn example() -> Self {
        Self {
            client_id: EXAMPLE_CLIENT_ID.into(),
            secret_hash: None,
            username: EXAMPLE_EMAIL.into(),
            client_metadata: None,
        }
    }
}

/// `ConfirmForgotPassword`: sets a new password with the reset code.
#[derive(Object, Debug, Clone)]
#[oai(
    rename = "ConfirmForgotPasswordRequest",
    rename_all = "PascalCase",
    example
)]
pub struct ConfirmForgotPasswordRequest {
    /// The app client's id.
    pub client_id: String,
    /// Ignored: the app client has no secret.
    pub secret_hash: Option<String>,
    /// The user's email (or internal username).
    pub username: String,
    /// The 6-digit reset code; read it from `GET /sim/control/sso/users/{email}/codes`.
    pub confirmation_code: String,
    /// The new password; must satisfy the password policy.
    pub password: String,
    /// Ignored.
    pub client_metadata: Option<HashMap<String, String>>,
}

impl Example for ConfirmForgotPasswordRequest {
    fn example() -> Self {
        Self {
            client_id: EXAMPLE_CLIENT_ID.into(),
            secret_hash: None,
            username: EXAMPLE_EMAIL.into(),
            confirmation_code: "654321".into(),
            password: "Another-Horse-7".into(),
            client_metadata: None,
        }
    }
}

/// `GlobalSignOut`: revokes every refresh token of the user and every access token issued
/// before.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GlobalSignOutRequest", rename_all = "PascalCase", example)]
pub struct GlobalSignOutRequest {
    /// An access token of the user to sign out.
    pub access_token: String,
}

impl Example for GlobalSignOutRequest {
    fn example() -> Self {
        Self {
            access_token: EXAMPLE_JWT.into(),
        }
    }
}

/// The request shapes; `X-Amz-Target` says which one the body is.
#[derive(Union, Debug, Clone)]
#[oai(rename = "CognitoRequest", one_of)]
pub enum CognitoRequest {
    SignUp(SignUpRequest),
    ConfirmSignUp(ConfirmSignUpRequest),
    ResendConfirmationCode(ResendConfirmationCodeRequest),
    InitiateAuth(InitiateAuthRequest),
    GetUser(GetUserRequest),
    ForgotPassword(ForgotPasswordRequest),
    ConfirmForgotPassword(ConfirmForgotPasswordRequest),
    GlobalSignOut(GlobalSignOutRequest),
}

/// How a code was delivered (`DeliveryMediumType`); this pool only emails.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename = "DeliveryMediumType", rename_all = "UPPERCASE")]
pub enum DeliveryMediumType {
    Sms,
    Email,
}

/// Where a code went (`CodeDeliveryDetailsType`).
#[derive(Object, Debug, Clone, PartialEq, Eq)]
#[oai(rename = "CodeDeliveryDetailsType", rename_all = "PascalCase")]
pub struct CodeDeliveryDetailsType {
    /// The masked address, e.g. `j***@e***`.
    pub destination: String,
    pub delivery_medium: DeliveryMediumType,
    /// The attribute the address is in: `email`.
    pub attribute_name: String,
}

impl From<CodeDelivery> for CodeDeliveryDetailsType {
    fn from(delivery: CodeDelivery) -> Self {
        Self {
            destination: delivery.destination,
            delivery_medium: DeliveryMediumType::Email,
            attribute_name: "email".into(),
        }
    }
}

/// The result of `SignUp`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "SignUpResponse", rename_all = "PascalCase", example)]
pub struct SignUpResponse {
    /// `true` when the pool confirmed the user at once (auto-confirm).
    pub user_confirmed: bool,
    /// Where the confirmation code went; absent when the user is already confirmed.
    #[oai(skip_serializing_if_is_none)]
    pub code_delivery_details: Option<CodeDeliveryDetailsType>,
    /// The new user's `sub`.
    pub user_sub: String,
}

impl Example for SignUpResponse {
    fn example() -> Self {
        Self {
            user_confirmed: false,
            code_delivery_details: Some(CodeDeliveryDetailsType {
                destination: "j***@e***".into(),
                delivery_medium: DeliveryMediumType::Email,
                attribute_name: "email".into(),
            }),
            user_sub: EXAMPLE_SUB.into(),
        }
    }
}

/// The (empty) result of `ConfirmSignUp`.
#[derive(Object, Debug, Clone, Default)]
#[oai(rename = "ConfirmSignUpResponse")]
pub struct ConfirmSignUpResponse {}

/// The result of `ResendConfirmationCode`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ResendConfirmationCodeResponse", rename_all = "PascalCase")]
pub struct ResendConfirmationCodeResponse {
    pub code_delivery_details: CodeDeliveryDetailsType,
}

/// The tokens of a successful authentication (`AuthenticationResultType`).
#[derive(Object, Debug, Clone)]
#[oai(rename = "AuthenticationResultType", rename_all = "PascalCase")]
pub struct AuthenticationResultType {
    /// The access token (JWT), for `GetUser` and `GlobalSignOut`.
    pub access_token: String,
    /// Seconds until the access and id tokens expire.
    pub expires_in: i32,
    /// Always `Bearer`.
    pub token_type: String,
    /// The refresh token; only from `USER_PASSWORD_AUTH`, not from a refresh.
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    /// The id token (JWT) with the user's attributes.
    pub id_token: String,
}

/// The result of `InitiateAuth`: tokens (this pool never poses a challenge).
#[derive(Object, Debug, Clone)]
#[oai(rename = "InitiateAuthResponse", rename_all = "PascalCase", example)]
pub struct InitiateAuthResponse {
    /// Empty, as Cognito sends it when no challenge follows.
    pub challenge_parameters: BTreeMap<String, String>,
    pub authentication_result: AuthenticationResultType,
}

impl Example for InitiateAuthResponse {
    fn example() -> Self {
        Self {
            challenge_parameters: BTreeMap::new(),
            authentication_result: AuthenticationResultType {
                access_token: EXAMPLE_JWT.into(),
                expires_in: 3600,
                token_type: "Bearer".into(),
                refresh_token: Some("yJ3c2VydmljZSI6ImNvZ25pdG8taWRwIn0x9v5kQ2Zr".into()),
                id_token: EXAMPLE_JWT.into(),
            },
        }
    }
}

/// The result of `GetUser`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "GetUserResponse", rename_all = "PascalCase", example)]
pub struct GetUserResponse {
    /// The internal username (the `sub`: the pool signs in by email).
    pub username: String,
    /// `sub`, `email_verified`, `given_name`, `family_name`, `email`.
    pub user_attributes: Vec<AttributeType>,
}

impl Example for GetUserResponse {
    fn example() -> Self {
        Self {
            username: EXAMPLE_SUB.into(),
            user_attributes: vec![
                AttributeType::new("sub", EXAMPLE_SUB),
                AttributeType::new("email_verified", "true"),
                AttributeType::new("given_name", "Jane"),
                AttributeType::new("family_name", "Doe"),
                AttributeType::new("email", EXAMPLE_EMAIL),
            ],
        }
    }
}

/// The result of `ForgotPassword`.
#[derive(Object, Debug, Clone)]
#[oai(rename = "ForgotPasswordResponse", rename_all = "PascalCase")]
pub struct ForgotPasswordResponse {
    pub code_delivery_details: CodeDeliveryDetailsType,
}

/// The (empty) result of `ConfirmForgotPassword`.
#[derive(Object, Debug, Clone, Default)]
#[oai(rename = "ConfirmForgotPasswordResponse")]
pub struct ConfirmForgotPasswordResponse {}

/// The (empty) result of `GlobalSignOut`.
#[derive(Object, Debug, Clone, Default)]
#[oai(rename = "GlobalSignOutResponse")]
pub struct GlobalSignOutResponse {}

/// The output shapes; the operation `X-Amz-Target` named says which one it is.
#[derive(Union, Debug, Clone)]
#[oai(rename = "CognitoOutput", one_of)]
pub enum CognitoOutput {
    SignUp(SignUpResponse),
    ConfirmSignUp(ConfirmSignUpResponse),
    ResendConfirmationCode(ResendConfirmationCodeResponse),
    InitiateAuth(InitiateAuthResponse),
    GetUser(GetUserResponse),
    ForgotPassword(ForgotPasswordResponse),
    ConfirmForgotPassword(ConfirmForgotPasswordResponse),
    GlobalSignOut(GlobalSignOutResponse),
}

/// A Cognito error body.
#[derive(Object, Debug, Clone)]
#[oai(rename = "CognitoErrorBody", example)]
pub struct CognitoErrorBody {
    /// The error's type; the AWS SDKs raise the exception of this name.
    #[oai(rename = "__type")]
    pub error_type: CognitoErrorType,
    pub message: String,
}

impl Example for CognitoErrorBody {
    fn example() -> Self {
        Self {
            error_type: CognitoErrorType::NotAuthorized,
            message: "Incorrect username or password.".into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The JSON 1.1 payloads.
// ---------------------------------------------------------------------------------------

/// A response body as `application/x-amz-json-1.1`.
pub struct AmzJson<T>(pub T);

impl<T: Type> Payload for AmzJson<T> {
    const CONTENT_TYPE: &'static str = AMZ_JSON_1_1;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ToJSON> IntoResponse for AmzJson<T> {
    fn into_response(self) -> Response {
        let body = self
            .0
            .to_json()
            .unwrap_or_else(|| Value::Object(Map::new()))
            .to_string();
        Response::builder().content_type(AMZ_JSON_1_1).body(body)
    }
}

/// The raw request body. It is parsed only once `X-Amz-Target` says which shape it is, and
/// any content type is let through so the operation can answer a wrong one in Cognito's
/// error format rather than poem-openapi's.
pub struct CognitoRequestBody {
    content_type: Option<String>,
    bytes: Vec<u8>,
}

impl<'a> ApiExtractor<'a> for CognitoRequestBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        CognitoRequest::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: Some("The request shape of the operation `X-Amz-Target` names."),
            content: vec![
                MetaMediaType {
                    content_type: AMZ_JSON_1_1,
                    schema: CognitoRequest::schema_ref(),
                },
                MetaMediaType {
                    content_type: "application/json",
                    schema: CognitoRequest::schema_ref(),
                },
            ],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = <Vec<u8> as FromRequest>::from_request(request, body).await?;
        Ok(Self {
            content_type: request.content_type().map(str::to_owned),
            bytes,
        })
    }
}

impl CognitoRequestBody {
    /// The AWS SDKs send `application/x-amz-json-1.1`; hand-written clients often send
    /// `application/json` or nothing.
    fn check_content_type(&self) -> Result<(), CognitoError> {
        let Some(content_type) = &self.content_type else {
            return Ok(());
        };
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            AMZ_JSON_1_1 | "application/x-amz-json-1.0" | "application/json" => Ok(()),
            _ => Err(CognitoError::new(
                CognitoErrorType::Serialization,
                format!("Unsupported Content-Type {content_type}; send {AMZ_JSON_1_1}"),
            )),
        }
    }

    /// Parses the body as `T`, reporting failures as Cognito does: malformed JSON or a
    /// member of the wrong type is a `SerializationException`, a missing required member
    /// an `InvalidParameterException` naming it. Required members are read from the
    /// shape's own schema, so the document and the check cannot disagree.
    fn parse<T: ParseFromJSON>(&self) -> Result<T, CognitoError> {
        let serialization =
            |message: String| CognitoError::new(CognitoErrorType::Serialization, message);
        let value: Value = if self.bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(&self.bytes)
                .map_err(|error| serialization(format!("Malformed JSON: {error}")))?
        };
        let Value::Object(mut members) = value else {
            return Err(serialization(
                "The request body must be a JSON object".into(),
            ));
        };
        // In the AWS JSON protocol a null member is an absent member.
        members.retain(|_, value| !value.is_null());
        let missing: Vec<&str> = required_members::<T>()
            .into_iter()
            .filter(|member| !members.contains_key(*member))
            .collect();
        if !missing.is_empty() {
            return Err(CognitoError::missing_members(&missing));
        }
        T::parse_from_json(Some(Value::Object(members)))
            .map_err(|error| serialization(error.into_message()))
    }
}

fn required_members<T: Type>() -> Vec<&'static str> {
    let mut registry = Registry::new();
    T::register(&mut registry);
    registry
        .schemas
        .get(T::name().as_ref())
        .map(|schema| schema.required.clone())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------

#[derive(ApiResponse)]
#[oai(bad_request_handler = "refused_before_dispatch")]
pub enum CognitoResponse {
    /// The operation's output shape (the one of the operation `X-Amz-Target` names).
    #[oai(status = 200)]
    Ok(
        AmzJson<CognitoOutput>,
        /// A fresh id for this request.
        #[oai(header = "x-amzn-RequestId")]
        String,
    ),
    /// Refused: `__type` names the Cognito exception, `message` says why. Among them:
    /// `NotAuthorizedException` (wrong password; unknown user; invalid, expired or revoked
    /// token), `UsernameExistsException`, `UserNotConfirmedException`,
    /// `CodeMismatchException`, `ExpiredCodeException`, `InvalidPasswordException`,
    /// `InvalidParameterException`, `ResourceNotFoundException` (unknown `ClientId`),
    /// `UnknownOperationException` (unknown or missing `X-Amz-Target`),
    /// `SerializationException` (malformed body).
    #[oai(status = 400)]
    Refused(
        AmzJson<CognitoErrorBody>,
        /// The exception's name followed by `:`, as Cognito sends it.
        #[oai(header = "x-amzn-ErrorType")]
        String,
        /// The message, also in the body.
        #[oai(header = "x-amzn-ErrorMessage")]
        String,
        /// A fresh id for this request.
        #[oai(header = "x-amzn-RequestId")]
        String,
    ),
    /// `InternalErrorException`: the simulator failed to sign a token. Never caused by the
    /// request.
    #[oai(status = 500)]
    Failed(
        AmzJson<CognitoErrorBody>,
        #[oai(header = "x-amzn-ErrorType")] String,
        #[oai(header = "x-amzn-ErrorMessage")] String,
        #[oai(header = "x-amzn-RequestId")] String,
    ),
}

impl CognitoResponse {
    fn from_result(result: Result<CognitoOutput, CognitoError>) -> Self {
        let request_id = Uuid::new_v4().to_string();
        let error = match result {
            Ok(output) => return Self::Ok(AmzJson(output), request_id),
            Err(error) => error,
        };
        let error_type_header = format!("{}:", error.error_type.as_str());
        // Header values must be visible ASCII; the body keeps the exact message.
        let message_header: String = error
            .message
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let body = AmzJson(CognitoErrorBody {
            error_type: error.error_type,
            message: error.message,
        });
        if error.error_type == CognitoErrorType::InternalError {
            Self::Failed(body, error_type_header, message_header, request_id)
        } else {
            Self::Refused(body, error_type_header, message_header, request_id)
        }
    }
}

/// Failures before the operation runs. The only parameter is `X-Amz-Target`, so a
/// parameter error is an unknown (or missing) target; anything else is the body.
fn refused_before_dispatch(error: poem::Error) -> CognitoResponse {
    let error = if error.is::<ParseParamError>() {
        CognitoError::new(
            CognitoErrorType::UnknownOperation,
            "X-Amz-Target is missing or names no operation of this user pool",
        )
    } else {
        CognitoError::new(CognitoErrorType::Serialization, error.to_string())
    };
    CognitoResponse::from_result(Err(error))
}

/// One key of a JSON Web Key Set (RFC 7517), as Cognito publishes it.
#[derive(Object, Debug, Clone)]
#[oai(rename = "JsonWebKey")]
pub struct JsonWebKey {
    /// `RSA`.
    pub kty: String,
    /// `RS256`.
    pub alg: String,
    /// `sig`.
    #[oai(rename = "use")]
    pub key_use: String,
    /// The key id tokens name in their header.
    pub kid: String,
    /// The modulus, base64url.
    pub n: String,
    /// The public exponent, base64url.
    pub e: String,
}

/// The pool's public keys.
#[derive(Object, Debug, Clone)]
#[oai(rename = "JsonWebKeySet")]
pub struct JsonWebKeySet {
    pub keys: Vec<JsonWebKey>,
}

/// The pool's OpenID Provider metadata: the part that says who issues and how to verify.
#[derive(Object, Debug, Clone)]
#[oai(rename = "OpenIdConfiguration")]
pub struct OpenIdConfiguration {
    /// Equal to the tokens' `iss`.
    pub issuer: String,
    /// The JWKS URL.
    pub jwks_uri: String,
    pub subject_types_supported: Vec<String>,
    /// `RS256`, or `HS256` when the simulator signs with a shared secret.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// Cognito's answer for a pool that does not exist.
#[derive(Object, Debug, Clone)]
#[oai(rename = "UnknownUserPool")]
pub struct UnknownUserPool {
    pub message: String,
}

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The pool's public keys.
    #[oai(status = 200)]
    Ok(Json<JsonWebKeySet>),
    /// No pool with that id here.
    #[oai(status = 404)]
    UnknownPool(Json<UnknownUserPool>),
}

#[derive(ApiResponse)]
pub enum OpenIdConfigurationResponse {
    /// The pool's OpenID configuration.
    #[oai(status = 200)]
    Ok(Json<OpenIdConfiguration>),
    /// No pool with that id here.
    #[oai(status = 404)]
    UnknownPool(Json<UnknownUserPool>),
}

// ---------------------------------------------------------------------------------------
// The API.
// ---------------------------------------------------------------------------------------

/// The Cognito user pool API and the pool's keys.
pub struct CognitoApi {
    simulator: SsoSimulator,
}

/// The simulator's own OpenAPI service, with its base URL as server.
pub(crate) fn service(simulator: SsoSimulator) -> OpenApiService<CognitoApi, ()> {
    let server = simulator.config().public_base_url.clone();
    OpenApiService::new(
        CognitoApi { simulator },
        "SSO simulator (AWS Cognito user pool)",
        env!("CARGO_PKG_VERSION"),
    )
    .description(SERVICE_DESCRIPTION)
    .server(server)
}

#[OpenApi]
impl CognitoApi {
    /// Call a Cognito user pool operation
    ///
    /// The AWS JSON 1.1 protocol: the `X-Amz-Target` header names the operation and the
    /// body is its request shape. Operations: `SignUp`, `ConfirmSignUp`,
    /// `ResendConfirmationCode`, `InitiateAuth` (`USER_PASSWORD_AUTH`,
    /// `REFRESH_TOKEN_AUTH`), `GetUser`, `ForgotPassword`, `ConfirmForgotPassword`,
    /// `GlobalSignOut`. Field names, errors and messages are Cognito's, so the AWS SDKs
    /// work unchanged; request signatures are ignored.
    #[oai(
        path = "/",
        method = "post",
        operation_id = "callCognitoOperation",
        tag = "SsoApiTag::CognitoUserPool",
        external_docs = "https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/Welcome.html"
    )]
    async fn call(
        &self,
        /// `AWSCognitoIdentityProviderService.<Operation>`.
        #[oai(name = "X-Amz-Target")]
        target: Header<CognitoTarget>,
        body: CognitoRequestBody,
    ) -> CognitoResponse {
        CognitoResponse::from_result(self.dispatch(target.0, &body))
    }

    /// The user pool's signing keys (JWKS)
    ///
    /// The public keys that verify the pool's RS256 tokens, at
    /// `{iss}/.well-known/jwks.json` as with Cognito. Keys are matched by the token
    /// header's `kid`.
    #[oai(
        path = "/:user_pool_id/.well-known/jwks.json",
        method = "get",
        operation_id = "getUserPoolJwks",
        tag = "SsoApiTag::UserPoolKeys"
    )]
    async fn jwks(
        &self,
        /// The user pool id, e.g. `eu-west-1_BoxOffice`.
        user_pool_id: Path<String>,
    ) -> JwksResponse {
        if let Err(unknown) = self.check_pool(&user_pool_id.0) {
            return JwksResponse::UnknownPool(Json(unknown));
        }
        let keys = self
            .simulator
            .signer()
            .rsa_key()
            .map(|key| {
                let (kid, n, e) = key.jwk_parts();
                JsonWebKey {
                    kty: "RSA".into(),
                    alg: "RS256".into(),
                    key_use: "sig".into(),
                    kid,
                    n,
                    e,
                }
            })
            .into_iter()
            .collect();
        JwksResponse::Ok(Json(JsonWebKeySet { keys }))
    }

    /// The user pool's OpenID configuration
    ///
    /// OpenID Provider metadata for discovery-based verifiers: the issuer and where its
    /// keys are. (Cognito's hosted-UI endpoints are not simulated.)
    #[oai(
        path = "/:user_pool_id/.well-known/openid-configuration",
        method = "get",
        operation_id = "getUserPoolOpenIdConfiguration",
        tag = "SsoApiTag::UserPoolKeys"
    )]
    async fn openid_configuration(
        &self,
        /// The user pool id, e.g. `eu-west-1_BoxOffice`.
        user_pool_id: Path<String>,
    ) -> OpenIdConfigurationResponse {
        if let Err(unknown) = self.check_pool(&user_pool_id.0) {
            return OpenIdConfigurationResponse::UnknownPool(Json(unknown));
        }
        let algorithm = match self.simulator.signer().pool_default() {
            SignWith::Rs256 => "RS256",
            SignWith::Hs256 { .. } => "HS256",
        };
        OpenIdConfigurationResponse::Ok(Json(OpenIdConfiguration {
            issuer: self.simulator.issuer(),
            jwks_uri: self.simulator.jwks_url(),
            subject_types_supported: vec!["public".into()],
            id_token_signing_alg_values_supported: vec![algorithm.into()],
        }))
    }
}

impl CognitoApi {
    fn check_pool(&self, user_pool_id: &str) -> Result<(), UnknownUserPool> {
        if user_pool_id == self.simulator.config().user_pool_id {
            Ok(())
        } else {
            Err(UnknownUserPool {
                message: format!("User pool {user_pool_id} does not exist."),
            })
        }
    }

    fn dispatch(
        &self,
        target: CognitoTarget,
        body: &CognitoRequestBody,
    ) -> Result<CognitoOutput, CognitoError> {
        body.check_content_type()?;
        let output = match target {
            CognitoTarget::SignUp => CognitoOutput::SignUp(self.sign_up(body.parse()?)?),
            CognitoTarget::ConfirmSignUp => {
                CognitoOutput::ConfirmSignUp(self.confirm_sign_up(body.parse()?)?)
            }
            CognitoTarget::ResendConfirmationCode => {
                CognitoOutput::ResendConfirmationCode(self.resend_confirmation_code(body.parse()?)?)
            }
            CognitoTarget::InitiateAuth => {
                CognitoOutput::InitiateAuth(self.initiate_auth(body.parse()?)?)
            }
            CognitoTarget::GetUser => CognitoOutput::GetUser(self.get_user(body.parse()?)?),
            CognitoTarget::ForgotPassword => {
                CognitoOutput::ForgotPassword(self.forgot_password(body.parse()?)?)
            }
            CognitoTarget::ConfirmForgotPassword => {
                CognitoOutput::ConfirmForgotPassword(self.confirm_forgot_password(body.parse()?)?)
            }
            CognitoTarget::GlobalSignOut => {
                CognitoOutput::GlobalSignOut(self.global_sign_out(body.parse()?)?)
            }
        };
        Ok(output)
    }

    fn check_client(&self, client_id: &str) -> Result<(), CognitoError> {
        if client_id == self.simulator.config().app_client_id {
            Ok(())
        } else {
            Err(CognitoError::new(
                CognitoErrorType::ResourceNotFound,
                format!("User pool client {client_id} does not exist."),
            ))
        }
    }

    fn sign_up(&self, request: SignUpRequest) -> Result<SignUpResponse, CognitoError> {
        self.check_client(&request.client_id)?;
        let password = request
            .password
            .ok_or_else(|| CognitoError::missing_members(&["Password"]))?;
        let mut new_user = NewUser {
            email: request.username,
            password,
            given_name: None,
            family_name: None,
        };
        for attribute in request.user_attributes.unwrap_or_default() {
            let value = attribute.value.filter(|value| !value.is_empty());
            match attribute.name.as_str() {
                // The username is the email; an `email` attribute only repeats it.
                "email" => {}
                "given_name" => new_user.given_name = value,
                "family_name" => new_user.family_name = value,
                "sub" | "email_verified" => {
                    return Err(CognitoError::not_authorized(
                        "A client attempted to write unauthorized attribute",
                    ));
                }
                other => {
                    return Err(CognitoError::invalid_parameter(format!(
                        "Attributes did not conform to the schema: Type for attribute {{{other}}} could not be determined"
                    )));
                }
            }
        }
        let now = self.simulator.now();
        let auto_confirm = self.simulator.config().auto_confirm;
        let outcome = self
            .simulator
            .lock_pool()
            .sign_up(new_user, auto_confirm, now)?;
        Ok(SignUpResponse {
            user_confirmed: outcome.confirmed,
            code_delivery_details: outcome.delivery.map(Into::into),
            user_sub: outcome.sub,
        })
    }

    fn confirm_sign_up(
        &self,
        request: ConfirmSignUpRequest,
    ) -> Result<ConfirmSignUpResponse, CognitoError> {
        self.check_client(&request.client_id)?;
        let now = self.simulator.now();
        self.simulator.lock_pool().confirm_sign_up(
            &request.username,
            &request.confirmation_code,
            now,
        )?;
        Ok(ConfirmSignUpResponse {})
    }

    fn resend_confirmation_code(
        &self,
        request: ResendConfirmationCodeRequest,
    ) -> Result<ResendConfirmationCodeResponse, CognitoError> {
        self.check_client(&request.client_id)?;
        let now = self.simulator.now();
        let delivery = self
            .simulator
            .lock_pool()
            .resend_confirmation_code(&request.username, now)?;
        Ok(ResendConfirmationCodeResponse {
            code_delivery_details: delivery.into(),
        })
    }

    fn initiate_auth(
        &self,
        request: InitiateAuthRequest,
    ) -> Result<InitiateAuthResponse, CognitoError> {
        self.check_client(&request.client_id)?;
        let parameters = request.auth_parameters.unwrap_or_default();
        let parameter = |name: &str| {
            parameters.get(name).map(String::as_str).ok_or_else(|| {
                CognitoError::invalid_parameter(format!("Missing required parameter {name}"))
            })
        };
        let now = self.simulator.now();
        let (user, session, refresh_token) = match request.auth_flow.as_str() {
            "USER_PASSWORD_AUTH" => {
                let username = parameter("USERNAME")?;
                let password = parameter("PASSWORD")?;
                let (user, session) = self
                    .simulator
                    .lock_pool()
                    .sign_in(username, password, now)?;
                let refresh_token = session.refresh_token.clone();
                (user, session, refresh_token)
            }
            // Refreshing never rotates the refresh token (rotation is off by default).
            "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => {
                let refresh_token = parameter("REFRESH_TOKEN")?;
                let (user, session) = self.simulator.lock_pool().refresh(refresh_token, now)?;
                (user, session, None)
            }
            flow @ ("USER_SRP_AUTH" | "CUSTOM_AUTH" | "USER_AUTH") => {
                return Err(CognitoError::invalid_parameter(format!(
                    "{flow} flow not enabled for this client"
                )));
            }
            "ADMIN_NO_SRP_AUTH" | "ADMIN_USER_PASSWORD_AUTH" => {
                return Err(CognitoError::invalid_parameter(
                    "Initiate Auth method not supported.",
                ));
            }
            other => {
                return Err(CognitoError::invalid_parameter(format!(
                    "1 validation error detected: Value '{other}' at 'authFlow' failed to satisfy constraint: \
                     Member must satisfy enum value set: [USER_SRP_AUTH, REFRESH_TOKEN_AUTH, REFRESH_TOKEN, \
                     CUSTOM_AUTH, ADMIN_NO_SRP_AUTH, USER_PASSWORD_AUTH, ADMIN_USER_PASSWORD_AUTH, USER_AUTH]"
                )));
            }
        };
        let tokens = self
            .simulator
            .issue_tokens(&user, &session, now)
            .map_err(|error| {
                tracing::error!(%error, "the SSO simulator could not sign a token");
                CognitoError::new(
                    CognitoErrorType::InternalError,
                    "Internal error while signing tokens",
                )
            })?;
        Ok(InitiateAuthResponse {
            challenge_parameters: BTreeMap::new(),
            authentication_result: AuthenticationResultType {
                access_token: tokens.access_token,
                expires_in: i32::try_from(self.simulator.token_ttl().num_seconds())
                    .unwrap_or(i32::MAX),
                token_type: "Bearer".into(),
                refresh_token,
                id_token: tokens.id_token,
            },
        })
    }

    /// The user an access token speaks for: signed by this pool the way it signs, an
    /// access token for this pool's client, unexpired on the host's clock, not revoked.
    fn access_token_user(&self, access_token: &str) -> Result<User, CognitoError> {
        let invalid = || CognitoError::not_authorized("Invalid Access Token");
        let claims: AccessTokenClaims = self
            .simulator
            .signer()
            .verify(access_token)
            .ok_or_else(invalid)?;
        let config = self.simulator.config();
        if claims.iss != self.simulator.issuer()
            || claims.token_use != "access"
            || claims.client_id != config.app_client_id
        {
            return Err(invalid());
        }
        let now = self.simulator.now().timestamp();
        if claims.nbf.is_some_and(|not_before| not_before > now) {
            return Err(invalid());
        }
        if claims.exp <= now {
            return Err(CognitoError::not_authorized("Access Token has expired"));
        }
        self.simulator
            .lock_pool()
            .access_token_user(&claims.sub, &claims.origin_jti)
            .cloned()
    }

    fn get_user(&self, request: GetUserRequest) -> Result<GetUserResponse, CognitoError> {
        let user = self.access_token_user(&request.access_token)?;
        let mut attributes = vec![
            AttributeType::new("sub", user.sub.clone()),
            AttributeType::new("email_verified", user.email_verified.to_string()),
        ];
        if let Some(given_name) = &user.given_name {
            attributes.push(AttributeType::new("given_name", given_name.clone()));
        }
        if let Some(family_name) = &user.family_name {
            attributes.push(AttributeType::new("family_name", family_name.clone()));
        }
        attributes.push(AttributeType::new("email", user.email.clone()));
        Ok(GetUserResponse {
            username: user.username().to_owned(),
            user_attributes: attributes,
        })
    }

    fn forgot_password(
        &self,
        request: ForgotPasswordRequest,
    ) -> Result<ForgotPasswordResponse, CognitoError> {
        self.check_client(&request.client_id)?;
        let now = self.simulator.now();
        let delivery = self
            .simulator
            .lock_pool()
            .forgot_password(&request.username, now)?;
        Ok(ForgotPasswordResponse {
            code_delivery_details: delivery.into(),
        })
    }

    fn confirm_forgot_password(
        &self,
        request: ConfirmForgotPasswordRequest,
    ) -> Result<ConfirmForgotPasswordResponse, CognitoError> {
        self.check_client(&request.client_id)?;
        let now = self.simulator.now();
        self.simulator.lock_pool().confirm_forgot_password(
            &request.username,
            &request.confirmation_code,
            &request.password,
            now,
        )?;
        Ok(ConfirmForgotPasswordResponse {})
    }

    fn global_sign_out(
        &self,
        request: GlobalSignOutRequest,
    ) -> Result<GlobalSignOutResponse, CognitoError> {
        let user = self.access_token_user(&request.access_token)?;
        self.simulator.lock_pool().global_sign_out(&user.sub);
        Ok(GlobalSignOutResponse {})
    }
}
