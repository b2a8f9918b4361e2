//! One 512-byte tar header and the PAX extended-header records, parsed without allocation
//! beyond the names they carry.

/// Size of a tar block.
pub(super) const BLOCK: usize = 512;

/// What one header says, before any metadata record overrides it.
#[derive(Debug)]
pub(super) struct Header {
    /// `prefix/name` (ustar) or `name`, cut at the first NUL.
    pub name: Vec<u8>,
    /// The link target field, cut at the first NUL.
    pub link: Vec<u8>,
    pub typeflag: u8,
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
}

/// True for an all-zero block (half of the end-of-archive marker).
pub(super) fn is_zero(block: &[u8; BLOCK]) -> bool {
    block.iter().all(|&b| b == 0)
}

/// The bytes of a NUL-padded text field.
fn text(field: &[u8]) -> &[u8] {
    memchr::memchr(0, field).map_or(field, |i| &field[..i])
}

/// The name field, for error messages about a header that did not parse.
pub(super) fn raw_name(block: &[u8; BLOCK]) -> Vec<u8> {
    text(&block[..100]).to_vec()
}

/// Parses a numeric field: octal text (leading spaces allowed, ended by NUL or space; blank
/// means 0) or GNU base-256 (high bit set). `Ok(None)` for a negative base-256 value.
pub(super) fn numeric(field: &[u8]) -> Result<Option<u64>, &'static str> {
    match field.first() {
        Some(0x80) => return base256(&field[1..]).map(Some),
        Some(0xff) => return Ok(None),
        _ => {}
    }
    let start = field.iter().position(|&b| b != b' ').unwrap_or(field.len());
    let digits = &field[start..];
    let end = digits.iter().position(|&b| b == 0 || b == b' ').unwrap_or(digits.len());
    if digits[end..].iter().any(|&b| b != 0 && b != b' ') {
        return Err("a numeric field has text after its terminator");
    }
    digits[..end]
        .iter()
        .try_fold(0u64, |n, &d| match d {
            b'0'..=b'7' => n.checked_mul(8).map(|n| n + u64::from(d - b'0')).ok_or("a numeric field overflows"),
            _ => Err("a numeric field is not octal"),
        })
        .map(Some)
}

fn base256(rest: &[u8]) -> Result<u64, &'static str> {
    rest.iter().try_fold(0u64, |n, &b| n.checked_mul(256).map(|n| n | u64::from(b)).ok_or("a base-256 field overflows"))
}

/// Checks the header checksum; both the unsigned (POSIX) and the signed (old Sun) sums pass.
pub(super) fn verify_checksum(block: &[u8; BLOCK]) -> Result<(), &'static str> {
    let want = numeric(&block[148..156])?.ok_or("the checksum field is negative")?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b.cast_signed());
    }
    if want == unsigned || i64::try_from(want).is_ok_and(|w| w == signed) {
        Ok(())
    } else {
        Err("checksum mismatch: not a tar header, or a corrupt one")
    }
}

/// Parses a header whose checksum passed. Ustar (`ustar\0`) joins the prefix field.
pub(super) fn parse(block: &[u8; BLOCK]) -> Result<Header, &'static str> {
    let mut name = Vec::new();
    let prefix = text(&block[345..500]);
    if &block[257..263] == b"ustar\0" && !prefix.is_empty() {
        name.extend_from_slice(prefix);
        name.push(b'/');
    }
    name.extend_from_slice(text(&block[..100]));
    let mode = numeric(&block[100..108])?.unwrap_or(0);
    let size = numeric(&block[124..136])?.ok_or("the size field is negative")?;
    Ok(Header {
        name,
        link: text(&block[157..257]).to_vec(),
        typeflag: block[156],
        mode: u32::try_from(mode & 0o777).unwrap_or(0),
        size,
        // A time before 1970 is kept as 0: nothing downstream needs it exact.
        mtime: numeric(&block[136..148])?.unwrap_or(0),
    })
}

/// What a PAX extended header ('x') overrides for the next entry.
#[derive(Debug, Default)]
pub(super) struct Pax {
    pub path: Option<Vec<u8>>,
    pub linkpath: Option<Vec<u8>>,
    pub size: Option<u64>,
    pub mtime: Option<u64>,
    /// A `GNU.sparse.*` key was present: the data is a sparse map, not the file.
    pub sparse: bool,
}

/// Parses PAX records (`"<len> <key>=<value>\n"`, `len` counting the whole record) into `pax`.
/// A global header ('g') passes `None`: its syntax is checked and its values ignored.
pub(super) fn parse_pax(mut data: &[u8], mut pax: Option<&mut Pax>) -> Result<(), &'static str> {
    while !data.is_empty() {
        let space = memchr::memchr(b' ', data).ok_or("a PAX record has no length")?;
        let len = decimal(&data[..space]).ok_or("a PAX record length is not a decimal number")?;
        let len = usize::try_from(len).ok().filter(|&l| l > space + 1 && l <= data.len()).ok_or("a PAX record length is out of range")?;
        let (record, rest) = data.split_at(len);
        data = rest;
        let body = record[space + 1..].strip_suffix(b"\n").ok_or("a PAX record does not end with a newline")?;
        let eq = memchr::memchr(b'=', body).ok_or("a PAX record has no '='")?;
        let (key, value) = (&body[..eq], &body[eq + 1..]);
        if let Some(pax) = pax.as_deref_mut() {
            apply(pax, key, value)?;
        }
    }
    Ok(())
}

fn apply(pax: &mut Pax, key: &[u8], value: &[u8]) -> Result<(), &'static str> {
    // An empty value unsets the keyword: the header's own field applies again.
    let set = (!value.is_empty()).then_some(value);
    match key {
        b"path" => pax.path = set.map(<[u8]>::to_vec),
        b"linkpath" => pax.linkpath = set.map(<[u8]>::to_vec),
        b"size" => pax.size = set.map(|v| decimal(v).ok_or("the PAX size is not a decimal number")).transpose()?,
        b"mtime" => pax.mtime = set.map(pax_time).transpose()?,
        k if k.starts_with(b"GNU.sparse.") => pax.sparse = true,
        _ => {}
    }
    Ok(())
}

/// A PAX time: optional '-', digits, optional fraction. Times before 1970 become 0.
fn pax_time(v: &[u8]) -> Result<u64, &'static str> {
    let (neg, v) = v.strip_prefix(b"-").map_or((false, v), |r| (true, r));
    let (whole, frac) = v.iter().position(|&b| b == b'.').map_or((v, &[][..]), |i| (&v[..i], &v[i + 1..]));
    let secs = decimal(whole).ok_or("the PAX mtime is not a number")?;
    if !frac.iter().all(u8::is_ascii_digit) {
        return Err("the PAX mtime is not a number");
    }
    Ok(if neg { 0 } else { secs })
}

fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| if d.is_ascii_digit() { n.checked_mul(10)?.checked_add(u64::from(d - b'0')) } else { None })
}
