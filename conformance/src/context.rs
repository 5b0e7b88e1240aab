//! What every scenario is handed: the target's clients, and customers to act as.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::checks::{self, SessionExpectation};
use crate::clock::ClockClient;
use crate::cloudpay::{CloudPayClient, Credential, Login};
use crate::config::{Target, TargetConfig};
use crate::http::{Exchange, HttpClient};
use crate::sso::{SignedIn, SsoClient, TokenMinter};
use crate::step::{Step, fail, skip};

/// A customer a scenario acts as.
#[derive(Debug, Clone)]
pub struct Customer {
    pub email: String,
    pub password: String,
    /// The names the identity provider holds, when known (always, for fresh customers).
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Signed up for this scenario: nothing bought, no other session, no one else using it.
    pub fresh: bool,
}

impl Customer {
    pub fn login(&self) -> Login<'_> {
        Login::Password {
            email: &self.email,
            password: &self.password,
        }
    }
}

/// A started CloudPay session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub customer_id: String,
}

impl Session {
    pub fn by_query(&self) -> Credential {
        Credential::SessionId(self.id.clone())
    }

    pub fn by_cookie(&self) -> Credential {
        Credential::AuthCookie(self.id.clone())
    }
}

pub struct Context {
    pub target: Target,
    pub http: HttpClient,
    pub cloudpay: CloudPayClient,
    sso: Option<SsoClient>,
    minter: Option<TokenMinter>,
    clock: Option<ClockClient>,
    /// Which configured test user to hand out next when fresh ones cannot be made.
    next_test_user: AtomicUsize,
}

fn random_hex(length: usize) -> String {
    uuid::Uuid::new_v4().simple().to_string()[..length].to_owned()
}

impl Context {
    pub fn new(target: Target) -> Self {
        let http = HttpClient::new();
        let endpoints = &target.endpoints;
        let config = &target.config;
        let sso = match (&endpoints.sso, &config.sso) {
            (Some(endpoint), Some(details)) if target.capabilities.id_tokens => {
                Some(SsoClient::new(
                    http.clone(),
                    endpoint.clone(),
                    details.app_client_id.clone(),
                    endpoints.jwks.clone(),
                ))
            }
            _ => None,
        };
        let minter = endpoints
            .sso_token_minting
            .clone()
            .map(|url| TokenMinter::new(http.clone(), url));
        let clock = endpoints
            .clock
            .clone()
            .map(|url| ClockClient::new(http.clone(), url));
        Context {
            cloudpay: CloudPayClient::new(http.clone(), endpoints.cloudpay.clone()),
            http,
            sso,
            minter,
            clock,
            next_test_user: AtomicUsize::new(0),
            target,
        }
    }

    pub fn config(&self) -> &TargetConfig {
        &self.target.config
    }

    /// The SSO endpoint, or a skip saying what is missing.
    pub fn sso(&self) -> Step<&SsoClient> {
        self.sso.as_ref().ok_or_else(|| {
            skip("needs SSO id tokens: the config has no urls.simSso with sso.appClientId")
        })
    }

    /// The token minting control, or a skip.
    pub fn minter(&self) -> Step<&TokenMinter> {
        self.minter.as_ref().ok_or_else(|| {
            skip("needs the SSO simulator's token minting: the config has no urls.simControl")
        })
    }

    pub fn has_minter(&self) -> bool {
        self.minter.is_some()
    }

    /// The Stripe customer's side (the Stripe simulator), or a skip.
    pub fn stripe(&self) -> Step<crate::stripe::StripePlayer> {
        let endpoints = &self.target.endpoints;
        match (&endpoints.stripe, &endpoints.control, &self.config().stripe) {
            (Some(api), Some(control), Some(details)) => Ok(crate::stripe::StripePlayer::new(
                self.http.clone(),
                api.clone(),
                control.clone(),
                details,
                endpoints.webhooks.clone(),
            )),
            _ => Err(skip(
                "needs the Stripe simulator: urls.simStripe, urls.simControl and stripe keys",
            )),
        }
    }

    /// The control surface's base URL, or a skip.
    pub fn control(&self) -> Step<&url::Url> {
        self.target
            .endpoints
            .control
            .as_ref()
            .ok_or_else(|| skip("needs the control surface: the config has no urls.simControl"))
    }

    /// The virtual clock, or a skip.
    pub fn clock(&self) -> Step<&ClockClient> {
        self.clock
            .as_ref()
            .ok_or_else(|| skip("needs the virtual clock: the config has no urls.simClock"))
    }

    /// A customer to act as: a fresh one when sign-up is possible, else the next configured
    /// test user in turn.
    pub async fn customer(&self) -> Step<Customer> {
        if self.target.capabilities.sign_up {
            return self.fresh_customer().await;
        }
        let users = &self.config().test_users;
        if users.is_empty() {
            return Err(skip(
                "needs a customer: sign-up is not available and the config has no testUsers",
            ));
        }
        let index = self.next_test_user.fetch_add(1, Ordering::Relaxed) % users.len();
        let user = &users[index];
        Ok(Customer {
            email: user.email.clone(),
            password: user.password.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            fresh: false,
        })
    }

    /// Two different customers (for ownership checks).
    pub async fn two_customers(&self) -> Step<(Customer, Customer)> {
        let first = self.customer().await?;
        let second = self.customer().await?;
        if first.email.eq_ignore_ascii_case(&second.email) {
            return Err(skip(
                "needs two different customers: sign-up is not available and the config has \
                 fewer than two testUsers",
            ));
        }
        Ok((first, second))
    }

    /// A customer signed up just now, so nothing else touches their sessions or account.
    pub async fn fresh_customer(&self) -> Step<Customer> {
        if !self.target.capabilities.sign_up {
            return Err(skip(
                "needs a fresh customer: sign-up needs urls.simSso, sso.appClientId and \
                 sso.autoConfirm",
            ));
        }
        let suffix = random_hex(12);
        let customer = Customer {
            email: format!("qa-{suffix}@conformance.example.com"),
            // The pool's policy: 8+ characters with upper case, lower case and a digit.
            password: format!("Qa-{suffix}-Pw9"),
            first_name: Some(format!("Quinn{}", &suffix[..4])),
            last_name: Some(format!("Tester{}", &suffix[4..8])),
            fresh: true,
        };
        self.sso()?
            .sign_up(
                &customer.email,
                &customer.password,
                customer.first_name.as_deref().unwrap_or_default(),
                customer.last_name.as_deref().unwrap_or_default(),
            )
            .await?;
        Ok(customer)
    }

    /// Signs in at the SSO endpoint for the customer's id token.
    pub async fn sign_in(&self, customer: &Customer) -> Step<SignedIn> {
        self.sso()?
            .sign_in(&customer.email, &customer.password)
            .await
    }

    /// Starts a CloudPay session (email and password) and checks the answer.
    pub async fn start_session(&self, customer: &Customer) -> Step<Session> {
        let exchange = self
            .cloudpay
            .start_session(&customer.login())
            .send()
            .await?;
        self.checked_start(&exchange, &SessionExpectation::started(customer))
            .await
    }

    /// Checks a session start's answer. When the answer is wrong but a session did start,
    /// that session is ended, so one failure does not also hold a slot of the device lock.
    pub async fn checked_start(
        &self,
        exchange: &Exchange,
        expectation: &SessionExpectation<'_>,
    ) -> Step<Session> {
        let checked = exchange.expect_json(200).and_then(|body| {
            checks::session_model(exchange, &body, expectation)?
                .ok_or_else(|| exchange.fail("session start answered without a session"))
        });
        match checked {
            Ok(live) => Ok(Session {
                id: live.id,
                customer_id: live.customer_id,
            }),
            Err(abort) => {
                let started = serde_json::from_str::<serde_json::Value>(&exchange.body)
                    .ok()
                    .and_then(|body| body["AuthenticationToken"].as_str().map(str::to_owned));
                if let Some(id) = started {
                    let _ = self.cloudpay.terminate(&Credential::SessionId(id)).await;
                }
                Err(abort)
            }
        }
    }

    /// Ends a session, best effort, so a failed or finished scenario leaves no slot taken.
    pub async fn end_quietly(&self, session: &Session) {
        let _ = self.cloudpay.terminate(&session.by_query()).await;
    }

    /// Ends a session and checks the answer is "no session".
    pub async fn end_session(&self, credential: &Credential) -> Step {
        let exchange = self.cloudpay.terminate(credential).await?;
        let body = exchange.expect_json(200)?;
        checks::session_model(&exchange, &body, &SessionExpectation::none())?;
        Ok(())
    }

    /// A fixture the configuration must name for this scenario.
    pub fn fixture<'a>(&self, name: &str, value: &'a Option<String>) -> Step<&'a str> {
        value
            .as_deref()
            .filter(|value| !value.is_empty())
            .ok_or_else(|| skip(format!("needs fixtures.{name} in the config")))
    }

    /// The countries where the geo-restricted fixture is sold, and one where it is not.
    pub fn geo_fixture(&self) -> Step<(&str, &[String], &str)> {
        let fixtures = &self.config().fixtures;
        let package = self.fixture(
            "geoRestrictedPackageId",
            &fixtures.geo_restricted_package_id,
        )?;
        let denied = self.fixture("geoDeniedCountry", &fixtures.geo_denied_country)?;
        if fixtures.geo_allowed_countries.is_empty() {
            return Err(skip("needs fixtures.geoAllowedCountries in the config"));
        }
        if fixtures
            .geo_allowed_countries
            .iter()
            .any(|country| country.eq_ignore_ascii_case(denied))
        {
            return Err(fail(
                "the config lists fixtures.geoDeniedCountry among geoAllowedCountries",
            ));
        }
        Ok((package, &fixtures.geo_allowed_countries, denied))
    }
}
