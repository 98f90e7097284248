//! Integrator work stream cursors: the payer and the sequence number of the last item processed,
//! written `<payer>/<seq>`. A cursor names its payer so one cannot be replayed against another.

/// A parsed cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Payer whose work it points into.
    pub payer_id: String,
    /// Sequence number of the last item processed.
    pub seq: i64,
}

impl Cursor {
    /// The cursor's text.
    pub fn encode(&self) -> String {
        format!("{}/{}", self.payer_id, self.seq)
    }

    /// Parses `text`; `None` when malformed.
    pub fn parse(text: &str) -> Option<Cursor> {
        let (payer_id, seq) = text.rsplit_once('/')?;
        let seq: i64 = seq.parse().ok()?;
        (seq >= 1 && !payer_id.is_empty() && seq.to_string() == text[payer_id.len() + 1..]).then(
            || Cursor {
                payer_id: payer_id.to_owned(),
                seq,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn malformed_cursors_are_refused() {
        for text in [
            "", "abc", "payer/", "/5", "payer/0", "payer/-1", "payer/+5", "payer/05", "payer/x",
        ] {
            assert_eq!(Cursor::parse(text), None, "{text}");
        }
    }

    proptest! {
        #[test]
        fn cursors_round_trip(payer in "[a-z0-9-]{2,64}", seq in 1..i64::MAX) {
            let cursor = Cursor { payer_id: payer, seq };
            prop_assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        }
    }
}
