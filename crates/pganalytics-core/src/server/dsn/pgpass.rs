//! Finding a password in a `.pgpass` file.

use super::DEFAULT_SOCKET_DIRS;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The password for `host:port:db:user` in a `.pgpass` file, exactly as libpq finds it: the
/// first matching line wins, `*` matches anything, `\` escapes `:` and `\`, and a file that
/// the group or others may access (or that is not a plain file) is ignored with a warning.
/// A host that is empty or the default socket folder matches `localhost`.
pub fn pgpass_lookup(path: &Path, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    if db.is_empty() || user.is_empty() {
        return None;
    }
    let host = if host.is_empty() || DEFAULT_SOCKET_DIRS.contains(&host.trim_end_matches('/')) {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        tracing::warn!(path = %path.display(), "password file is not a plain file; ignored");
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "password file has group or world access; permissions should be u=rw (0600) or \
             less; ignored"
        );
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    for line in text.split('\n') {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rest = pgpass_field(line, host)
            .and_then(|r| pgpass_field(r, &port))
            .and_then(|r| pgpass_field(r, db))
            .and_then(|r| pgpass_field(r, user));
        let Some(rest) = rest else { continue };
        let mut password = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                ':' => break,
                '\\' => match chars.next() {
                    Some(next) => password.push(next),
                    None => password.push('\\'),
                },
                _ => password.push(c),
            }
        }
        return (!password.is_empty()).then_some(password);
    }
    None
}

/// Matches the first field of `line` against `token` (libpq's `pwdfMatchesString`); returns
/// the text after the field's ":".
fn pgpass_field<'a>(line: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut chars = line.char_indices();
    let mut expected = token.chars();
    let mut want = expected.next();
    loop {
        let (index, mut c) = chars.next()?;
        let mut escaped = false;
        if c == '\\' {
            c = chars.next()?.1;
            escaped = true;
        }
        if c == ':' && !escaped && want.is_none() {
            return Some(&line[index + 1..]);
        }
        if want != Some(c) {
            return None;
        }
        want = expected.next();
    }
}
