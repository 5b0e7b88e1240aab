//! The customer's own account: names and custom fields.

use super::{Core, CoreError, Credential, Standing};
use crate::core::model::{CustomFieldValue, Customer};
use crate::store::AccountUpdate;

const MAX_NAME_LENGTH: usize = 100;
const MAX_CUSTOM_VALUE_LENGTH: usize = 1000;

#[derive(Debug, Clone)]
pub struct AccountView {
    pub customer: Customer,
    pub custom_fields: Vec<CustomFieldValue>,
    pub standing: Standing,
}

#[derive(Debug, Clone)]
pub struct CustomFieldChange {
    pub id: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The email belongs to the identity provider; asking to change it here is refused.
    pub email: Option<String>,
    pub custom_fields: Vec<CustomFieldChange>,
}

fn checked_name(label: &str, value: Option<String>) -> Result<Option<String>, CoreError> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(CoreError::Invalid(format!("{label} must not be empty")));
    }
    if trimmed.chars().count() > MAX_NAME_LENGTH {
        return Err(CoreError::Invalid(format!(
            "{label} is longer than {MAX_NAME_LENGTH} characters"
        )));
    }
    Ok(Some(trimmed.to_owned()))
}

impl Core {
    pub async fn account(&self, credential: &Credential) -> Result<AccountView, CoreError> {
        let customer = self.authenticated_customer(credential).await?;
        self.account_of(customer).await
    }

    async fn account_of(&self, customer: Customer) -> Result<AccountView, CoreError> {
        let custom_fields = self.store.custom_values(&customer.id).await?;
        let standing = self.standing(&customer).await?;
        Ok(AccountView {
            customer,
            custom_fields,
            standing,
        })
    }

    /// Validates every change first, then writes them all in one transaction: a refused
    /// request changes nothing.
    pub async fn update_account(
        &self,
        credential: &Credential,
        changes: AccountChanges,
    ) -> Result<AccountView, CoreError> {
        let customer = self.authenticated_customer(credential).await?;
        if let Some(email) = &changes.email
            && !email.eq_ignore_ascii_case(&customer.email)
        {
            return Err(CoreError::Invalid(
                "EmailAddress cannot be changed here; it belongs to the identity provider".into(),
            ));
        }
        let first_name = checked_name("FirstName", changes.first_name)?;
        let last_name = checked_name("LastName", changes.last_name)?;
        let defined = self.store.custom_fields().await?;
        let mut custom_values = Vec::with_capacity(changes.custom_fields.len());
        for change in changes.custom_fields {
            let field = defined
                .iter()
                .find(|field| field.id == change.id)
                .ok_or_else(|| {
                    CoreError::Invalid(format!("There is no custom field {}", change.id))
                })?;
            let value = change.value.unwrap_or_default();
            if field.required && value.trim().is_empty() {
                return Err(CoreError::Invalid(format!(
                    "The custom field {} is required",
                    field.label
                )));
            }
            if value.chars().count() > MAX_CUSTOM_VALUE_LENGTH {
                return Err(CoreError::Invalid(format!(
                    "The custom field {} is longer than {MAX_CUSTOM_VALUE_LENGTH} characters",
                    field.label
                )));
            }
            custom_values.push((field.id.clone(), value));
        }
        self.store
            .update_account(
                &customer.id,
                &AccountUpdate {
                    first_name: first_name.as_deref(),
                    last_name: last_name.as_deref(),
                    custom_values: &custom_values,
                },
                self.now(),
            )
            .await?;
        let customer = self
            .store
            .customer(&customer.id)
            .await?
            .ok_or(CoreError::NotFound("customer"))?;
        self.account_of(customer).await
    }
}
