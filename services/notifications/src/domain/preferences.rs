//! A recipient's preferences: per channel on/off and per-category switches. Mandatory categories
//! (critical alerts, service messages) cannot be switched off; an SMS opt-out by keyword is kept
//! apart and only START lifts it.

use super::kind::is_mandatory;
use clinicnet_proto::notifications::v1::{
    Channel, ChannelPreference, NotificationCategory, Preferences,
};
use platform::error::Violations;

/// Whether `preferences` let a message of `category` go out on `channel` (a channel or category
/// not listed is enabled; mandatory categories always pass).
pub fn allows(preferences: &Preferences, channel: Channel, category: NotificationCategory) -> bool {
    if is_mandatory(category) {
        return true;
    }
    let Some(entry) = preferences
        .channels
        .iter()
        .find(|c| c.channel == channel as i32)
    else {
        return true;
    };
    entry.enabled
        && entry
            .categories
            .iter()
            .filter(|c| c.category == category as i32)
            .all(|c| c.enabled)
}

/// Field violations of new preferences: channels and categories set and each listed once, no
/// mandatory category switched off.
pub fn validate(channels: &[ChannelPreference], violations: &mut Violations) {
    let mut seen = Vec::new();
    for (i, entry) in channels.iter().enumerate() {
        let field = format!("preferences.channels[{i}]");
        match Channel::try_from(entry.channel) {
            Ok(Channel::Unspecified) | Err(_) => {
                violations.add(format!("{field}.channel"), "a channel is required")
            }
            Ok(channel) if seen.contains(&channel) => {
                violations.add(format!("{field}.channel"), "channel listed twice")
            }
            Ok(channel) => seen.push(channel),
        }
        let mut categories = Vec::new();
        for (j, category) in entry.categories.iter().enumerate() {
            let field = format!("{field}.categories[{j}].category");
            match NotificationCategory::try_from(category.category) {
                Ok(NotificationCategory::Unspecified) | Err(_) => {
                    violations.add(field, "a category is required")
                }
                Ok(c) if categories.contains(&c) => violations.add(field, "category listed twice"),
                Ok(c) if is_mandatory(c) && !category.enabled => violations.add(
                    field,
                    "critical and service messages cannot be switched off",
                ),
                Ok(c) => categories.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::notifications::v1::CategoryPreference;

    fn prefs(channel: Channel, enabled: bool, off: &[NotificationCategory]) -> Preferences {
        Preferences {
            channels: vec![ChannelPreference {
                channel: channel as i32,
                enabled,
                categories: off
                    .iter()
                    .map(|c| CategoryPreference {
                        category: *c as i32,
                        enabled: false,
                    })
                    .collect(),
                sms_opted_out: false,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn channel_and_category_switches_apply_but_never_to_critical() {
        let off = prefs(Channel::Sms, false, &[]);
        assert!(!allows(&off, Channel::Sms, NotificationCategory::Reminders));
        assert!(allows(
            &off,
            Channel::Email,
            NotificationCategory::Reminders
        ));
        assert!(allows(
            &off,
            Channel::Sms,
            NotificationCategory::CriticalAlerts
        ));
        let no_reminders = prefs(Channel::Email, true, &[NotificationCategory::Reminders]);
        assert!(!allows(
            &no_reminders,
            Channel::Email,
            NotificationCategory::Reminders
        ));
        assert!(allows(
            &no_reminders,
            Channel::Email,
            NotificationCategory::AppointmentUpdates
        ));
    }

    #[test]
    fn mandatory_categories_cannot_be_switched_off_and_channels_appear_once() {
        let mut bad = prefs(Channel::Sms, true, &[NotificationCategory::CriticalAlerts]);
        bad.channels.push(bad.channels[0].clone());
        let mut violations = Violations::new();
        validate(&bad.channels, &mut violations);
        let status = tonic::Status::from(violations.finish().unwrap_err());
        let fields = platform::error::violated_fields(&status);
        assert!(fields.contains(&"preferences.channels[0].categories[0].category".to_owned()));
        assert!(fields.contains(&"preferences.channels[1].channel".to_owned()));
    }
}
