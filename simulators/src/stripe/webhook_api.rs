//! Stripe's events and webhook endpoints over HTTP (`/v1/events`, `/v1/webhook_endpoints`),
//! with the same conventions as the rest of the API ([`super::api`]).

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::{OpenApi, Tags};
use serde_json::{Value, json};

use super::StripeSimulator;
use super::api::{Access, FormBody, StripeResponse, list_params, metadata, to_json};
use super::error::ApiError;
use super::events::type_matches;
use super::form::Form;
use super::state::list_page;
use super::table::{Candidates, Page, list_table};
use super::webhooks::{NewWebhookEndpoint, WebhookEndpoint, WebhookEndpointUpdate};

/// Stripe takes at most this many `types[]`.
const MAX_TYPES: usize = 20;

#[derive(Tags)]
enum StripeWebhookTag {
    /// What happened in the account, newest first.
    Events,
    /// Where events are sent, signed.
    WebhookEndpoints,
}

/// Stripe's events and webhook endpoints.
pub struct StripeWebhooksApi {
    simulator: StripeSimulator,
}

impl StripeWebhooksApi {
    pub(super) fn new(simulator: StripeSimulator) -> Self {
        Self { simulator }
    }
}

/// The endpoint as its creation answers it: the only time `secret` is shown.
fn with_secret(endpoint: &WebhookEndpoint) -> Result<Value, ApiError> {
    let mut value = to_json(endpoint)?;
    value["secret"] = json!(endpoint.secret);
    Ok(value)
}

/// `enabled_events[]=a&enabled_events[]=b`.
fn enabled_events(form: &mut Form) -> Result<Option<Vec<String>>, ApiError> {
    form.string_list("enabled_events")
}

#[OpenApi]
impl StripeWebhooksApi {
    /// List all events
    ///
    /// Newest first. `type` takes one type or a group with a trailing `*`
    /// (`payment_intent.*`); `types[]` up to 20 exact types; `created` a timestamp or
    /// `created[gt|gte|lt|lte]`; `delivery_success=false` the events some webhook endpoint
    /// has not yet answered with a 2xx.
    #[oai(
        path = "/v1/events",
        method = "get",
        operation_id = "GetEvents",
        tag = "StripeWebhookTag::Events"
    )]
    async fn list_events(&self, request: &Request) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                &[],
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    let single = form.string("type")?;
                    let types = form.string_list("types")?;
                    let created = form.range("created")?;
                    let delivery_success = form.boolean("delivery_success")?;
                    form.finish()?;
                    if single.is_some() && types.is_some() {
                        return Err(ApiError::invalid(
                            "You may only specify one of these parameters: type, types.",
                        )
                        .with_param("types"));
                    }
                    if types.as_ref().is_some_and(|types| types.len() > MAX_TYPES) {
                        return Err(ApiError::invalid(format!(
                            "You may specify at most {MAX_TYPES} types."
                        ))
                        .with_param("types"));
                    }
                    // What to read: the undelivered events, or the events of the types asked
                    // for, or all; the filter below decides.
                    let by_type = &account.indexes.events_by_type;
                    let candidates = if delivery_success == Some(false) {
                        Candidates::Sets(vec![&account.indexes.undelivered_events])
                    } else if let Some(pattern) = &single {
                        by_type.matching(|event_type| type_matches(pattern, event_type))
                    } else if let Some(types) = &types {
                        by_type
                            .matching(|event_type| types.iter().any(|wanted| wanted == event_type))
                    } else {
                        Candidates::All
                    };
                    list_table(
                        &account.events,
                        &candidates,
                        |event| {
                            single
                                .as_deref()
                                .is_none_or(|pattern| type_matches(pattern, event.event_type))
                                && types.as_ref().is_none_or(|types| {
                                    types.iter().any(|wanted| wanted == event.event_type)
                                })
                                && created.is_none_or(|range| range.contains(event.created))
                                && delivery_success
                                    .is_none_or(|success| success == (event.pending_webhooks == 0))
                        },
                        &Page {
                            limit,
                            starting_after: after.as_deref(),
                            ending_before: before.as_deref(),
                            url: "/v1/events",
                            noun: "event",
                        },
                    )
                },
            )
            .await
    }

    /// Retrieve an event
    #[oai(
        path = "/v1/events/:id",
        method = "get",
        operation_id = "GetEventsId",
        tag = "StripeWebhookTag::Events"
    )]
    async fn retrieve_event(&self, request: &Request, id: Path<String>) -> StripeResponse {
        self.simulator
            .run(request, None, Access::Secret, &[], |account, form, _| {
                form.finish()?;
                Ok(account.event(&id)?.clone())
            })
            .await
    }

    /// Create a webhook endpoint
    ///
    /// `url` (http or https) and `enabled_events[]` (event types this simulator emits, or
    /// `*`) are required. The answer is the only one to show the signing `secret`.
    #[oai(
        path = "/v1/webhook_endpoints",
        method = "post",
        operation_id = "PostWebhookEndpoints",
        tag = "StripeWebhookTag::WebhookEndpoints"
    )]
    async fn create_webhook_endpoint(&self, request: &Request, body: FormBody) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                &[],
                |account, mut form, ctx| {
                    let new = NewWebhookEndpoint {
                        url: form.required_string("url")?,
                        enabled_events: enabled_events(&mut form)?.unwrap_or_default(),
                        description: form.string("description")?,
                        metadata: metadata(&mut form)?.unwrap_or_default(),
                        api_version: form.string("api_version")?,
                    };
                    form.finish()?;
                    with_secret(&account.create_webhook_endpoint(new, ctx.now)?)
                },
            )
            .await
    }

    /// List all webhook endpoints
    #[oai(
        path = "/v1/webhook_endpoints",
        method = "get",
        operation_id = "GetWebhookEndpoints",
        tag = "StripeWebhookTag::WebhookEndpoints"
    )]
    async fn list_webhook_endpoints(&self, request: &Request) -> StripeResponse {
        self.simulator
            .run(
                request,
                None,
                Access::Secret,
                &[],
                |account, mut form, _| {
                    let (limit, after, before) = list_params(&mut form)?;
                    form.finish()?;
                    list_page(
                        account.webhooks.endpoints.values().collect(),
                        limit,
                        after.as_deref(),
                        before.as_deref(),
                        "/v1/webhook_endpoints",
                        "webhook endpoint",
                    )
                },
            )
            .await
    }

    /// Retrieve a webhook endpoint
    #[oai(
        path = "/v1/webhook_endpoints/:webhook_endpoint",
        method = "get",
        operation_id = "GetWebhookEndpointsWebhookEndpoint",
        tag = "StripeWebhookTag::WebhookEndpoints"
    )]
    async fn retrieve_webhook_endpoint(
        &self,
        request: &Request,
        webhook_endpoint: Path<String>,
    ) -> StripeResponse {
        self.simulator
            .run(request, None, Access::Secret, &[], |account, form, _| {
                form.finish()?;
                Ok(account.webhook_endpoint(&webhook_endpoint)?.clone())
            })
            .await
    }

    /// Update a webhook endpoint
    ///
    /// `url`, `enabled_events[]`, `description`, `metadata`, and `disabled` (a disabled
    /// endpoint is owed no new events, and what it is already owed waits until it is
    /// enabled again).
    #[oai(
        path = "/v1/webhook_endpoints/:webhook_endpoint",
        method = "post",
        operation_id = "PostWebhookEndpointsWebhookEndpoint",
        tag = "StripeWebhookTag::WebhookEndpoints"
    )]
    async fn update_webhook_endpoint(
        &self,
        request: &Request,
        webhook_endpoint: Path<String>,
        body: FormBody,
    ) -> StripeResponse {
        self.simulator
            .run(
                request,
                Some(body),
                Access::Secret,
                &[],
                |account, mut form, _| {
                    let update = WebhookEndpointUpdate {
                        url: form.string("url")?,
                        enabled_events: enabled_events(&mut form)?,
                        description: form.string("description")?,
                        metadata: metadata(&mut form)?,
                        disabled: form.boolean("disabled")?,
                    };
                    form.finish()?;
                    account.update_webhook_endpoint(&webhook_endpoint, update)
                },
            )
            .await
    }

    /// Delete a webhook endpoint
    ///
    /// What it was still owed is not sent.
    #[oai(
        path = "/v1/webhook_endpoints/:webhook_endpoint",
        method = "delete",
        operation_id = "DeleteWebhookEndpointsWebhookEndpoint",
        tag = "StripeWebhookTag::WebhookEndpoints"
    )]
    async fn delete_webhook_endpoint(
        &self,
        request: &Request,
        webhook_endpoint: Path<String>,
    ) -> StripeResponse {
        self.simulator
            .run(request, None, Access::Secret, &[], |account, form, _| {
                form.finish()?;
                let deleted = account.delete_webhook_endpoint(&webhook_endpoint)?;
                Ok(json!({"id": deleted.id, "object": "webhook_endpoint", "deleted": true}))
            })
            .await
    }
}
