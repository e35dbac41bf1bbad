//! Where records come from: the OpenTelemetry resource and instrumentation scope.

use super::AttributeValue;

/// The resource a record comes from (a service, a host), as its attributes, together with the
/// instrumentation scope that emitted it. Batches keep one entry per distinct pair and point each
/// record at its entry, so a resource seen under two scopes is two entries.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resource {
    /// Resource attributes such as `service.name`.
    pub attributes: Vec<(String, AttributeValue)>,
    /// Instrumentation scope name (empty when unknown).
    pub scope_name: String,
    /// Instrumentation scope version (empty when unknown).
    pub scope_version: String,
}

impl Resource {
    /// A resource with these attributes and no scope.
    pub fn with_attributes(attributes: Vec<(String, AttributeValue)>) -> Resource {
        Resource {
            attributes,
            ..Resource::default()
        }
    }

    /// The value of one attribute.
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }

    /// `service.name`, when it is a string.
    pub fn service_name(&self) -> Option<&str> {
        self.attribute("service.name")
            .and_then(AttributeValue::as_str)
    }
}
