//! The clinicnet contracts: gRPC services of the four services, the operator API every service
//! exposes, and the event payloads published on NATS JetStream — generated from `proto/clinicnet`.
#![allow(
    missing_docs,
    clippy::large_enum_variant,
    clippy::doc_lazy_continuation
)]

/// Encoded `FileDescriptorSet` of every contract, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/clinicnet_descriptor.bin"));

/// Shared value types.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("clinicnet.common.v1");
    }
}

/// Directory API: clinics, locations, chairs, providers, search.
pub mod directory {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("clinicnet.directory.v1");
    }
}

/// Appointments API: patients, availability, bookings, courses, outcomes.
pub mod appointments {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("clinicnet.appointments.v1");
    }
}

/// Insurance API: coverage, eligibility, prior authorization, claims, remittances.
pub mod insurance {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("clinicnet.insurance.v1");
    }
}

/// Notifications API: deliveries, preferences, webhook endpoints.
pub mod notifications {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("clinicnet.notifications.v1");
    }
}

/// Operator view of the event backbone, exposed by every service.
pub mod ops {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("clinicnet.ops.v1");
    }
}

/// Event payloads published on NATS JetStream.
pub mod events {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("clinicnet.events.v1");
    }
}
