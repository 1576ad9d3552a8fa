//! Privacy helpers of planning and the dispatch check.

use switchyard_core::{Locality, PrivacyClass};

/// [`PrivacyClass::stricter`] of a set class and an optional one.
pub(crate) fn strictest_of(a: PrivacyClass, b: Option<PrivacyClass>) -> PrivacyClass {
    b.map_or(a, |b| a.stricter(b))
}

/// Whether `locality` is a cloud.
pub(crate) fn is_cloud(locality: Locality) -> bool {
    locality == Locality::Cloud
}
