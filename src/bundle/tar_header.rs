//! Tar headers exactly as Go's archive/tar writes them for imgpkg's `tar.Header`s: USTAR when
//! everything fits, a PAX extended header before it for long or non-ASCII names and huge sizes,
//! and GNU (base-256 numbers, `././@LongLink` names) when the mode does not fit in octal.

/// The tar block size.
pub(super) const BLOCK: usize = 512;
/// Largest size a 12-byte octal field holds (11 digits).
const MAX_OCTAL_SIZE: u64 = 0o77777777777;
/// Largest mode an 8-byte octal field holds (7 digits); Go's archive/tar writes anything larger
/// in a GNU header, base-256 encoded.
const MAX_OCTAL_MODE: u64 = 0o7777777;

/// One or more 512-byte blocks for an entry: a PAX extended header first when the name or size
/// does not fit USTAR (as Go's archive/tar does), then the USTAR header. A mode too large for
/// octal (only with `push --preserve-permissions`) rules out USTAR and PAX, so Go writes a GNU
/// header instead.
pub(super) fn header_blocks(name: &str, mode: u64, size: u64, typeflag: u8) -> Vec<u8> {
    if mode > MAX_OCTAL_MODE {
        return gnu_header_blocks(name, mode, size, typeflag);
    }
    let mut records = Vec::new();
    let (prefix, short) = match ustar_split(name) {
        Some(split) => split,
        None => {
            records.push(pax_record("path", name));
            (String::new(), ascii_truncated(name, 100))
        }
    };
    let size_field = if size > MAX_OCTAL_SIZE {
        records.push(pax_record("size", &size.to_string()));
        0
    } else {
        size
    };
    let mut out = Vec::with_capacity(BLOCK);
    if !records.is_empty() {
        let data: Vec<u8> = records.concat();
        let pax_name = match name.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/PaxHeaders.0/{base}"),
            None => format!("PaxHeaders.0/{name}"),
        };
        out.extend_from_slice(&ustar_header(
            "",
            ascii_truncated(&pax_name, 100).as_bytes(),
            0,
            data.len() as u64,
            b'x',
        ));
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.extend_from_slice(&ustar_header(
        &prefix,
        short.as_bytes(),
        mode,
        size_field,
        typeflag,
    ));
    out
}

/// Go's GNU-format entry: a `././@LongLink` entry carrying a name longer than 100 bytes, then a
/// header whose numeric fields are octal when they fit and base-256 otherwise.
fn gnu_header_blocks(name: &str, mode: u64, size: u64, typeflag: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK);
    if name.len() > 100 {
        let data = format!("{name}\0");
        let mut long = header_fields(b"././@LongLink", 0, data.len() as u64, b'L');
        finish_header(&mut long, Format::Gnu);
        out.extend_from_slice(&long);
        out.extend_from_slice(data.as_bytes());
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    // Go copies as much of the name as fits; the long-link entry above holds all of it.
    let short = &name.as_bytes()[..name.len().min(100)];
    let mut h = header_fields(short, mode, size, typeflag);
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    finish_header(&mut h, Format::Gnu);
    out.extend_from_slice(&h);
    out
}

/// Go's `splitUSTARPath`: names up to 100 bytes go whole; longer ASCII names split at a `/` into
/// a prefix (at most 155 bytes) and a name (at most 100 bytes).
fn ustar_split(name: &str) -> Option<(String, String)> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= 100 {
        return Some((String::new(), name.to_string()));
    }
    let mut length = name.len();
    if length > 156 {
        length = 156;
    } else if name.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let (plen, nlen) = (i, name.len() - i - 1);
    if i == 0 || nlen == 0 || nlen > 100 || plen > 155 {
        return None;
    }
    Some((name[..i].to_string(), name[i + 1..].to_string()))
}

fn ascii_truncated(s: &str, max: usize) -> String {
    s.chars().filter(|c| c.is_ascii()).take(max).collect()
}

/// A PAX record `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    format!("{len} {key}={value}\n").into_bytes()
}

/// A USTAR header exactly as Go's archive/tar formats it: octal fields zero-padded with a NUL
/// terminator, empty uname/gname, devmajor/devminor `0000000\0`, checksum `%06o\0 `.
fn ustar_header(prefix: &str, name: &[u8], mode: u64, size: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut h = header_fields(name, mode, size, typeflag);
    // Go leaves devmajor/devminor empty in PAX extended headers and zero-filled in USTAR ones.
    if typeflag != b'x' {
        octal(&mut h[329..337], 0);
        octal(&mut h[337..345], 0);
    }
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    finish_header(&mut h, Format::Ustar);
    h
}

#[derive(Clone, Copy)]
enum Format {
    Ustar,
    Gnu,
}

/// The fields every header format shares: name, mode, uid/gid 0, size, mtime 0, type.
fn header_fields(name: &[u8], mode: u64, size: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    numeric(&mut h[100..108], mode);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    numeric(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = typeflag;
    h
}

/// The magic and version of `format`, then the checksum (`%06o\0 `) over the whole block.
fn finish_header(h: &mut [u8; BLOCK], format: Format) {
    match format {
        Format::Ustar => {
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
        }
        Format::Gnu => {
            h[257..263].copy_from_slice(b"ustar ");
            h[263..265].copy_from_slice(b" \0");
        }
    }
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
}

/// Go's numeric field: octal when the value fits, otherwise base-256 (big-endian with the top
/// bit of the first byte set). The writer only asks for base-256 in GNU headers.
fn numeric(field: &mut [u8], value: u64) {
    let digits = (field.len() - 1) as u32;
    if value < 1u64 << (3 * digits) {
        octal(field, value);
        return;
    }
    let mut v = value;
    for byte in field.iter_mut().rev() {
        *byte = v as u8;
        v >>= 8;
    }
    field[0] |= 0x80;
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}
