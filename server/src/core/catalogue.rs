//! Packages (subscription plan options), their geo restriction and sales channel.

use super::{Core, CoreError, Country};
use crate::core::model::{CustomField, Package, SalesChannel};

#[derive(Debug, Clone)]
pub struct PackageFilter {
    pub channel: SalesChannel,
    /// The caller's country; geo-restricted packages need one that is listed.
    pub country: Option<Country>,
    /// Only packages that grant this entitlement.
    pub entitlement: Option<String>,
}

/// The catalogue a deployment starts with (from its configuration file, or simulator
/// mode's built-in one).
#[derive(Debug, Clone, Default)]
pub struct CatalogueSeed {
    pub packages: Vec<Package>,
    pub custom_fields: Vec<CustomField>,
}

impl CatalogueSeed {
    /// Checks what the database constraints cannot express, before anything is written.
    pub fn validate(&self) -> Result<(), CoreError> {
        let mut ids = std::collections::HashSet::new();
        for package in &self.packages {
            if !ids.insert(package.id.as_str()) {
                return Err(CoreError::Invalid(format!(
                    "package {} is defined twice",
                    package.id
                )));
            }
            if package.title.trim().is_empty() {
                return Err(CoreError::Invalid(format!(
                    "package {} has no title",
                    package.id
                )));
            }
            if let Some(country) = package
                .countries
                .iter()
                .find(|c| Country::parse(c).is_none())
            {
                return Err(CoreError::Invalid(format!(
                    "package {}: {country} is not an ISO 3166-1 alpha-2 country code",
                    package.id
                )));
            }
            if package.sales_channel == SalesChannel::Iap && package.iap_products.is_empty() {
                return Err(CoreError::Invalid(format!(
                    "package {} is sold in app stores only but names no store product",
                    package.id
                )));
            }
            if package.trial_days.is_some() && !package.recurring {
                return Err(CoreError::Invalid(format!(
                    "package {}: a free trial needs a recurring package",
                    package.id
                )));
            }
        }
        Ok(())
    }
}

impl Core {
    /// Writes the seed catalogue; running it again updates the same rows.
    pub async fn seed_catalogue(&self, seed: &CatalogueSeed) -> Result<(), CoreError> {
        seed.validate()?;
        let now = self.now();
        for package in &seed.packages {
            self.store.upsert_package(package, now).await?;
        }
        for (order, field) in seed.custom_fields.iter().enumerate() {
            self.store.upsert_custom_field(field, order as i64).await?;
        }
        Ok(())
    }

    pub async fn packages(&self, filter: &PackageFilter) -> Result<Vec<Package>, CoreError> {
        let packages = self.store.packages().await?;
        Ok(packages
            .into_iter()
            .filter(|package| package.sales_channel == filter.channel)
            .filter(|package| package.sold_in(filter.country.as_ref().map(Country::code)))
            .filter(|package| {
                filter
                    .entitlement
                    .as_ref()
                    .is_none_or(|wanted| package.entitlements.iter().any(|e| e == wanted))
            })
            .collect())
    }

    /// One package; hidden (not found) where the caller's country may not buy it, exactly as
    /// the list hides it.
    pub async fn package(&self, id: &str, country: Option<&Country>) -> Result<Package, CoreError> {
        let package = self
            .store
            .package(id)
            .await?
            .ok_or(CoreError::NotFound("package"))?;
        if !package.sold_in(country.map(Country::code)) {
            return Err(CoreError::NotFound("package"));
        }
        Ok(package)
    }
}
