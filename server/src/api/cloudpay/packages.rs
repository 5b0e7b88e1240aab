//! The package catalogue: public, geo-filtered by the `location` header.

use std::sync::Arc;

use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, Tags};

use super::CloudPay;
use super::auth::OptionalCloudPayAuth;
use super::error::CloudPayError;
use super::wire::{PackageList, PackageType, Plan, SinglePackage, StatusMessage};
use crate::core::model::{Package, SalesChannel};
use crate::core::{CoreError, PackageFilter};

#[derive(Tags)]
enum PackageTags {
    /// The subscription packages on sale.
    Packages,
}

#[derive(ApiResponse)]
enum PackageByIdResponse {
    #[oai(status = 200)]
    Found(Json<Box<SinglePackage>>),
    /// The `location` header is not a country code.
    #[oai(status = 400)]
    BadRequest(Json<StatusMessage>),
    /// No such package, or not sold in the caller's country.
    #[oai(status = 404)]
    NotFound(Json<StatusMessage>),
}

pub(crate) struct PackageApi(pub(crate) Arc<CloudPay>);

impl PackageApi {
    fn purchase_url(&self, package: &Package, auth: &OptionalCloudPayAuth) -> String {
        let base = format!(
            "{}/sso/startbasket/{}",
            self.0.settings.public_url, package.id
        );
        // `public_url` is checked when the configuration loads, so the parse only fails
        // for a package id no URL can carry; the link then goes without the credential.
        match (auth.link_parameter(), url::Url::parse(&base)) {
            (Some((name, value)), Ok(mut url)) => {
                url.query_pairs_mut().append_pair(name, value);
                url.to_string()
            }
            _ => base,
        }
    }
}

#[OpenApi]
impl PackageApi {
    /// Retrieve a list of packages
    ///
    /// The packages on sale to the caller, in display order. No session is needed. By default
    /// the list holds web packages; `type=iap` returns only app-store (in-app purchase)
    /// packages, each with its store product ids in `IAPData`. Packages restricted to some
    /// countries appear only when the `location` header names one of them.
    #[oai(
        path = "/api/v1/package",
        method = "get",
        tag = "PackageTags::Packages",
        operation_id = "get-api-v1-package"
    )]
    async fn list_packages(
        &self,
        auth: OptionalCloudPayAuth,
        /// `iap` for in-app-purchase packages only.
        #[oai(name = "type")]
        package_type: Query<Option<PackageType>>,
        /// Only packages granting this entitlement.
        entitlement: Query<Option<String>>,
        /// The caller's country (ISO 3166-1 alpha-2), for geo restriction.
        location: Header<Option<String>>,
        /// Language code.
        #[oai(name = "lang")]
        _lang: Query<Option<String>>,
    ) -> Result<Json<PackageList>, CloudPayError> {
        let filter = PackageFilter {
            channel: match package_type.0 {
                Some(PackageType::Iap) => SalesChannel::Iap,
                None => SalesChannel::Web,
            },
            country: self.0.country(location.0.as_deref())?,
            entitlement: entitlement.0.filter(|e| !e.is_empty()),
        };
        let packages = self.0.core.packages(&filter).await?;
        Ok(Json(PackageList {
            subscription_plan_options: packages
                .iter()
                .map(|package| Plan::from_package(package, self.purchase_url(package, &auth)))
                .collect(),
        }))
    }

    /// Retrieve a package
    ///
    /// One package by id. With a `location` header, a package not sold in that country is
    /// not found.
    #[oai(
        path = "/api/v1/package/:packageId",
        method = "get",
        tag = "PackageTags::Packages",
        operation_id = "get-api-v1-package-by-id"
    )]
    async fn package_by_id(
        &self,
        auth: OptionalCloudPayAuth,
        /// The package id (`SubscriptionPlanOptions[].Id`).
        #[oai(name = "packageId")]
        package_id: Path<String>,
        /// The caller's country (ISO 3166-1 alpha-2), for geo restriction.
        location: Header<Option<String>>,
    ) -> Result<PackageByIdResponse, CloudPayError> {
        let Ok(country) = self.0.country(location.0.as_deref()) else {
            return Ok(PackageByIdResponse::BadRequest(Json(StatusMessage {
                status: 400,
                message: "location must be an ISO 3166-1 alpha-2 country code".into(),
            })));
        };
        match self.0.core.package(&package_id.0, country.as_ref()).await {
            Ok(package) => Ok(PackageByIdResponse::Found(Json(Box::new(SinglePackage {
                subscription_plan_options: Plan::from_package(
                    &package,
                    self.purchase_url(&package, &auth),
                ),
            })))),
            Err(CoreError::NotFound(_)) => Ok(PackageByIdResponse::NotFound(Json(StatusMessage {
                status: 404,
                message: format!("package {} not found", package_id.0),
            }))),
            Err(other) => Err(other.into()),
        }
    }
}
