//! The directory's own sort key for paging search results (distance, then id); tokens and pages
//! come from `platform::paging`.

use platform::paging::Key;
use uuid::Uuid;

/// Search results ordered by distance, then id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistanceKey {
    /// Straight-line (chord) distance of the last item's nearest location, in kilometres, as the
    /// database computed it (kept bit for bit); 0 when the search has no point.
    pub chord_km: f64,
    /// Id of the last item.
    pub id: Uuid,
}

impl Key for DistanceKey {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.chord_km.to_bits().to_be_bytes());
        self.id.write(out);
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        let (distance, id) = bytes.split_at_checked(8)?;
        Some(DistanceKey {
            chord_km: f64::from_bits(u64::from_be_bytes(distance.try_into().ok()?)),
            id: Uuid::read(id)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::directory::v1::ListProvidersRequest;
    use platform::paging::Page;

    fn filters(clinic: &str) -> ListProvidersRequest {
        ListProvidersRequest {
            clinic_id: clinic.into(),
            ..Default::default()
        }
    }

    #[test]
    fn distance_keys_round_trip_bit_for_bit() {
        let key = DistanceKey {
            chord_km: 12.345_678_901_234_567,
            id: Uuid::now_v7(),
        };
        let page: Page<DistanceKey> = Page::parse(&filters(""), 1, "", 20, 200).unwrap();
        let (_, token) = page.finish(vec![key, key], |k| *k);
        let next: Page<DistanceKey> = Page::parse(&filters(""), 1, &token, 20, 200).unwrap();
        assert_eq!(next.after, Some(key));
    }
}
