//! Pagination: `maxResults` + `nextToken` (reference §A.7).
//!
//! Cursors are opaque URL-safe base64 **with `=` padding**, like the service's, so that a
//! client which forgets to percent-encode them is caught here as it would be there.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use rand::RngCore as _;

use super::error::ApiError;
use super::input::Query;
use crate::config::Guesses;

/// Which listing a cursor belongs to (a cursor of one listing is refused by another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// ListMicrovms.
    Microvms = 1,
    /// ListMicrovmImages.
    Images = 2,
    /// ListMicrovmImageVersions.
    ImageVersions = 3,
    /// ListManagedMicrovmImages.
    ManagedImages = 4,
    /// ListManagedMicrovmImageVersions.
    ManagedImageVersions = 5,
    /// ListMicrovmImageBuilds.
    ImageBuilds = 6,
}

const MAGIC: &[u8; 4] = b"whm1";
/// Payload length; 100 bytes ≡ 1 (mod 3), so every cursor ends in `==`.
const CURSOR_BYTES: usize = 100;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageRequest {
    listing: Listing,
    offset: usize,
    size: usize,
}

impl PageRequest {
    /// Reads `maxResults` and `nextToken` from `query`.
    pub(crate) fn from_query(listing: Listing, query: &Query, guesses: &Guesses) -> Result<Self, ApiError> {
        if guesses.refuse_unencoded_cursor_padding && query.has_raw_equals("nextToken") {
            return Err(ApiError::validation_without_message());
        }
        let size = match query.get("maxResults") {
            None => guesses.default_page_size,
            Some(raw) => page_size(raw, guesses.max_page_size)?,
        };
        let offset = match query.get("nextToken").filter(|t| !t.is_empty()) {
            None => 0,
            Some(token) => decode(listing, token).ok_or_else(|| ApiError::validation("Invalid pagination token"))?,
        };
        Ok(Self { listing, offset, size })
    }

    /// The page of `items` and the cursor of the next page, if any.
    pub(crate) fn page<T: Clone>(&self, items: &[T]) -> (Vec<T>, Option<String>) {
        let start = self.offset.min(items.len());
        let end = start.saturating_add(self.size).min(items.len());
        let next = (end < items.len()).then(|| encode(self.listing, end));
        (items[start..end].to_vec(), next)
    }
}

fn page_size(raw: &str, max: usize) -> Result<usize, ApiError> {
    let n: i64 = raw.parse().map_err(|_| ApiError::serialization(format!("maxResults must be an integer, got '{raw}'")))?;
    let mut v = super::input::Violations::default();
    v.at_least("maxResults", n, 1);
    v.at_most("maxResults", n, i64::try_from(max).unwrap_or(i64::MAX));
    v.finish()?;
    Ok(usize::try_from(n).unwrap_or(1))
}

fn encode(listing: Listing, offset: usize) -> String {
    let mut bytes = vec![0u8; CURSOR_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    bytes[..4].copy_from_slice(MAGIC);
    bytes[4] = listing as u8;
    bytes[5..13].copy_from_slice(&(offset as u64).to_be_bytes());
    URL_SAFE.encode(bytes)
}

fn decode(listing: Listing, token: &str) -> Option<usize> {
    let bytes = URL_SAFE.decode(token).ok()?;
    if bytes.len() != CURSOR_BYTES || &bytes[..4] != MAGIC || bytes[4] != listing as u8 {
        return None;
    }
    let offset = u64::from_be_bytes(bytes[5..13].try_into().ok()?);
    usize::try_from(offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn pages_through_with_padded_cursors() {
        let g = Guesses::default();
        let items: Vec<u32> = (0..5).collect();
        let first = PageRequest::from_query(Listing::Microvms, &query("maxResults=2"), &g).expect("first");
        let (page, next) = first.page(&items);
        assert_eq!(page, vec![0, 1]);
        let next = next.expect("more pages");
        assert!(next.ends_with("=="), "{next}");
        let encoded = percent_encoding::utf8_percent_encode(&next, percent_encoding::NON_ALPHANUMERIC).to_string();
        let second = PageRequest::from_query(Listing::Microvms, &query(&format!("maxResults=2&nextToken={encoded}")), &g);
        assert_eq!(second.expect("second").page(&items).0, vec![2, 3]);
        let raw = PageRequest::from_query(Listing::Microvms, &query(&format!("nextToken={next}")), &g);
        assert_eq!(raw, Err(ApiError::validation_without_message()));
        let other = PageRequest::from_query(Listing::Images, &query(&format!("nextToken={encoded}")), &g);
        assert!(other.is_err());
        assert!(PageRequest::from_query(Listing::Images, &query("maxResults=0"), &g).is_err());
    }
}
