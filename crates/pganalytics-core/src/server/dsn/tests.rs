use super::*;
use crate::error::ErrorCode;
use sqlx::postgres::PgSslMode;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |key: &str| map.get(key).cloned()
}

fn parse_err(input: &str) -> Error {
    match parse(input) {
        Ok(dsn) => panic!("{input:?} should be rejected, got {dsn:?}"),
        Err(e) => e,
    }
}

fn write_private(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn keyword_value_form() {
    let dsn = parse("host=db1 port=5433 dbname=sales user=alice").unwrap();
    assert_eq!(dsn.host(), Some("db1"));
    assert_eq!(dsn.port(), Some("5433"));
    assert_eq!(dsn.dbname(), Some("sales"));
    assert_eq!(dsn.user(), Some("alice"));
    assert_eq!(dsn.password(), None);
    // Keywords keep the order written.
    let keys: Vec<&str> = dsn.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["host", "port", "dbname", "user"]);
}

#[test]
fn keyword_value_quoting_and_escapes() {
    let dsn = parse(
        "  host = localhost\tport= 5432 dbname ='my db' password='it\\'s' \
         application_name=a\\ b options='-c geqo=off' sslkey='' user=o'brien",
    )
    .unwrap();
    // Blanks around "=" are allowed, as libpq allows them.
    assert_eq!(dsn.host(), Some("localhost"));
    assert_eq!(dsn.port(), Some("5432"));
    assert_eq!(dsn.dbname(), Some("my db"));
    assert_eq!(dsn.password(), Some("it's"));
    // A backslash escapes a blank outside quotes too.
    assert_eq!(dsn.get("application_name"), Some("a b"));
    assert_eq!(dsn.get("options"), Some("-c geqo=off"));
    assert_eq!(dsn.get("sslkey"), Some(""));
    // A quote inside an unquoted value is literal.
    assert_eq!(dsn.user(), Some("o'brien"));
    // A later keyword replaces an earlier one, as in libpq.
    assert_eq!(parse("port=1 port=2").unwrap().port(), Some("2"));
    // An unquoted value may contain "=".
    assert_eq!(
        parse("options=-cgeqo=off").unwrap().get("options"),
        Some("-cgeqo=off")
    );
}

#[test]
fn uri_form() {
    let dsn = parse(
        "postgresql://alice:s%40cret@db1:5433/sales?sslmode=require&application_name=pg%20an",
    )
    .unwrap();
    assert_eq!(dsn.user(), Some("alice"));
    assert_eq!(dsn.password(), Some("s@cret"));
    assert_eq!(dsn.host(), Some("db1"));
    assert_eq!(dsn.port(), Some("5433"));
    assert_eq!(dsn.dbname(), Some("sales"));
    assert_eq!(dsn.get("sslmode"), Some("require"));
    assert_eq!(dsn.get("application_name"), Some("pg an"));

    let short = parse("postgres://db1").unwrap();
    assert_eq!(short.host(), Some("db1"));
    assert_eq!(short.port(), None);
    // An empty URI means "all defaults", as in libpq.
    assert_eq!(parse("postgres://").unwrap(), Dsn::default());
    // JDBC's ssl=true is understood.
    assert_eq!(
        parse("postgres://h?ssl=true").unwrap().get("sslmode"),
        Some("require")
    );
}

#[test]
fn uri_several_hosts() {
    let dsn = parse("postgres://u@h1:5432,h2:5433,h3/db?target_session_attrs=read-write").unwrap();
    assert_eq!(dsn.host(), Some("h1,h2,h3"));
    // A host without a port gets an empty slot, meaning the default.
    assert_eq!(dsn.port(), Some("5432,5433,"));
    let resolved = dsn.resolve(&env_of(&[])).unwrap();
    // The first host is the one connected to.
    assert_eq!(resolved.host(), "h1");
    assert_eq!(resolved.port(), 5432);
}

#[test]
fn uri_ipv6() {
    let dsn = parse("postgres://[::1]:5433/db").unwrap();
    assert_eq!(dsn.host(), Some("::1"));
    assert_eq!(dsn.port(), Some("5433"));
    let resolved = dsn.resolve(&env_of(&[("PGUSER", "u")])).unwrap();
    assert_eq!(resolved.describe(), "u@[::1]:5433/db");
    let zoned = parse("postgres://[fe80::1%25eth0],[::2]:6000/db").unwrap();
    assert_eq!(zoned.host(), Some("fe80::1%eth0,::2"));
    assert_eq!(zoned.port(), Some(",6000"));
}

#[test]
fn unix_socket_hosts() {
    let encoded = parse("postgres://%2Fvar%2Frun%2Fpostgresql:5433/db").unwrap();
    assert_eq!(encoded.host(), Some("/var/run/postgresql"));
    let query = parse("postgresql:///db?host=/tmp/pg&port=5434").unwrap();
    assert_eq!(query.host(), Some("/tmp/pg"));
    let resolved = query.resolve(&env_of(&[("PGUSER", "u")])).unwrap();
    assert!(resolved.is_unix_socket());
    assert_eq!(resolved.describe(), "u@/tmp/pg:5434/db");
    let options = resolved.connect_options(None);
    assert_eq!(
        options.get_socket().map(|p| p.as_path()),
        Some(Path::new("/tmp/pg"))
    );
    // libpq does not ask for TLS over a socket.
    assert!(matches!(options.get_ssl_mode(), PgSslMode::Disable));
    let kv = parse("host=/var/run/postgresql port=5432").unwrap();
    assert_eq!(kv.host(), Some("/var/run/postgresql"));
}

fn assert_invalid(input: &str, names: &str) {
    let err = parse_err(input);
    assert_eq!(err.code, ErrorCode::InvalidInput, "{input:?}: {err}");
    assert!(
        err.message.contains(names),
        "{input:?}: message {:?} should name {names:?}",
        err.message
    );
    let hint = err.hint.unwrap_or_default();
    // Every parse error shows both forms.
    assert!(
        hint.contains("postgres://user@host:5432/dbname") || hint.contains("URI"),
        "{hint}"
    );
    assert!(hint.contains("host=localhost port=5432"), "{hint}");
}

#[test]
fn malformed_inputs_are_invalid_input() {
    assert_invalid("", "empty");
    assert_invalid("   ", "empty");
    assert_invalid("host='db1", "unterminated quoted string");
    assert_invalid("host=db1 port", "missing \"=\" after \"port\"");
    assert_invalid("localhost", "missing \"=\" after \"localhost\"");
    assert_invalid("host=db1 port=54x", "invalid port number \"54x\"");
    assert_invalid("port=0", "invalid port number");
    assert_invalid("port=70000", "invalid port number");
    assert_invalid("postgres://h:abc/db", "invalid port number \"abc\"");
    assert_invalid("sslmode=sometimes", "invalid sslmode value \"sometimes\"");
    assert_invalid(
        "postgres://h/db?sslmode=maybe",
        "invalid sslmode value \"maybe\"",
    );
    assert_invalid(
        "postgres://h/d%zzb",
        "invalid percent-encoding in the database name",
    );
    assert_invalid("postgres://h/d%4", "invalid percent-encoding");
    assert_invalid("postgres://h/d%00b", "%00");
    assert_invalid("postgres://h/d%ffb", "not valid UTF-8");
    assert_invalid("postgres://[::1/db", "missing \"]\"");
    assert_invalid("postgres://[]/db", "IPv6 host address in the URI is empty");
    assert_invalid("postgres://[::1]x/db", "unexpected character");
    assert_invalid(
        "postgres://h/db?sslmode",
        "missing \"=\" in the URI query parameter",
    );
    assert_invalid("postgres://h/db?a=b=c", "extra \"=\"");
    assert_invalid("connect_timeout=soon", "invalid integer value \"soon\"");
    assert_invalid("hostaddr=db.example.com", "invalid hostaddr");
}

#[test]
fn unknown_keywords_are_named() {
    assert_invalid(
        "host=h colour=blue",
        "unknown connection keyword \"colour\"",
    );
    assert_invalid(
        "postgres://h/db?colour=blue",
        "unknown URI query parameter \"colour\"",
    );
}

#[test]
fn every_libpq_keyword_is_accepted() {
    for keyword in [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslpassword",
        "sslsni",
        "requirepeer",
        "require_auth",
        "target_session_attrs",
        "service",
        "servicefile",
        "gssencmode",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "channel_binding",
        "sslnegotiation",
        "sslcompression",
        "sslcertmode",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "load_balance_hosts",
        "replication",
    ] {
        // Values every keyword accepts are hard to find; these suffice for the checked ones.
        let value = match keyword {
            "port" => "5432",
            "hostaddr" => "127.0.0.1",
            "sslmode" => "require",
            "gssencmode" | "channel_binding" => "prefer",
            "target_session_attrs" => "any",
            "load_balance_hosts" => "disable",
            k if k.starts_with("keepalives")
                || k == "connect_timeout"
                || k == "tcp_user_timeout" =>
            {
                "1"
            }
            _ => "x",
        };
        let dsn = parse(&format!("{keyword}={value}"))
            .unwrap_or_else(|e| panic!("{keyword} should be accepted: {e}"));
        assert_eq!(dsn.get(keyword), Some(value));
    }
}

/// Every way a password could end up in an error message.
#[test]
fn password_never_in_errors() {
    let cases: &[(&str, &[&str])] = &[
        ("host=h password='S3cretPw", &["S3cretPw"]),
        // An unquoted password with a space: the rest looks like a keyword.
        ("host=h password=S3cret Pw port=5", &["S3cret", "Pw"]),
        ("host=h password=S3cret Pw=x", &["S3cret", "Pw"]),
        ("password='S3c'retPw' host=h", &["S3c", "retPw"]),
        ("password=S3cretPw port=S3cretPw", &["S3cretPw"]),
        ("password=S3cretPw sslmode=S3cretPw", &["S3cretPw"]),
        (
            "password=S3cretPw colour=blue sslmode=S3cret",
            &["S3cretPw"],
        ),
        ("postgres://u:S3cret%zzPw@h/db", &["S3cret", "zzPw"]),
        ("postgres://u:S3cret%00Pw@h/db", &["S3cret"]),
        // An unencoded "/" or "@" in the password.
        ("postgres://u:S3c/retPw@h/db", &["S3c", "retPw"]),
        ("postgres://u:S3c@retPw@h/db", &["S3c", "retPw"]),
        ("postgres://u:S3c@retPw:5432@h/db", &["S3c", "retPw"]),
        ("postgres://u:5432/retPw@h/db", &["retPw"]),
        ("postgres://u:S3cretPw@h:S3cretPw/db", &["S3cretPw"]),
        ("postgres://u:S3cretPw@h/db?sslmode=S3cretPw", &["S3cretPw"]),
        ("postgres://h/db?password=S3c&retPw", &["S3c", "retPw"]),
        ("postgres://h/db?password=S3c&retPw=1", &["S3c", "retPw"]),
        ("postgres://h/db?password=S3c=retPw", &["S3c", "retPw"]),
    ];
    for (input, secrets) in cases {
        let err = parse_err(input);
        assert_eq!(err.code, ErrorCode::InvalidInput, "{input}");
        let text = format!("{err} {err:?}");
        for secret in *secrets {
            assert!(
                !text.contains(secret),
                "{input:?} leaked {secret:?}: {text}"
            );
        }
    }
}

#[test]
fn password_never_displayed() {
    for input in [
        "host=h user=u password=S3cretPw dbname=d",
        "host=h password='S3cret Pw' sslpassword=KeyPass",
        "postgres://u:S3cretPw@h/d?sslpassword=KeyPass",
    ] {
        let dsn = parse(input).unwrap();
        for text in [
            dsn.to_string(),
            dsn.to_string_redacted(),
            format!("{dsn:?}"),
            dsn.without_password().to_string(),
            format!("{:?}", dsn.resolve(&env_of(&[("PGUSER", "u")])).unwrap()),
        ] {
            assert!(!text.contains("S3cret"), "{input:?}: {text}");
            assert!(!text.contains("KeyPass"), "{input:?}: {text}");
        }
        assert!(dsn.password().is_some());
        assert_eq!(dsn.without_password().password(), None);
        assert_eq!(dsn.without_password().get("sslpassword"), None);
    }
}

#[test]
fn display_round_trips() {
    let dsn =
        parse("postgres://u@h1,h2:5433/my%20db?application_name=it%27s%5Cme&options=-c%20a%3Db")
            .unwrap();
    let text = dsn.to_string();
    assert_eq!(
        text,
        "user=u host=h1,h2 port=,5433 dbname='my db' application_name='it\\'s\\\\me' \
         options='-c a=b'"
    );
    assert_eq!(parse(&text).unwrap(), dsn);
    let empty = parse("host=h sslkey=''").unwrap();
    assert_eq!(parse(&empty.to_string()).unwrap(), empty);
}

#[test]
fn set_checks_keywords_and_values() {
    let mut dsn = Dsn::default();
    dsn.set("host", "db1").unwrap();
    dsn.set("port", "5433").unwrap();
    assert_eq!(dsn.to_string(), "host=db1 port=5433");
    assert_eq!(
        dsn.set("colour", "x").unwrap_err().code,
        ErrorCode::InvalidInput
    );
    assert_eq!(
        dsn.set("port", "x").unwrap_err().code,
        ErrorCode::InvalidInput
    );
}

#[test]
fn env_fills_what_the_string_leaves_unset() {
    let env = env_of(&[
        ("PGHOST", "envhost"),
        ("PGPORT", "6000"),
        ("PGUSER", "envuser"),
        ("PGDATABASE", "envdb"),
        ("PGPASSWORD", "envpw"),
        ("PGSSLMODE", "require"),
        ("PGAPPNAME", "envapp"),
        ("PGCONNECT_TIMEOUT", "1"),
    ]);
    let resolved = parse("host=h user=u").unwrap().resolve(&env).unwrap();
    // Explicit keywords win over the environment.
    assert_eq!(resolved.host(), "h");
    assert_eq!(resolved.user(), "u");
    // The environment fills the rest.
    assert_eq!(resolved.port(), 6000);
    assert_eq!(resolved.dbname(), "envdb");
    assert_eq!(resolved.password(), Some("envpw"));
    assert!(matches!(resolved.ssl_mode(), PgSslMode::Require));
    assert_eq!(resolved.get("application_name"), Some("envapp"));
    // libpq raises a 1-second timeout to 2.
    assert_eq!(resolved.connect_timeout(), Some(Duration::from_secs(2)));
    let options = resolved.connect_options(None);
    assert_eq!(options.get_host(), "h");
    assert_eq!(options.get_port(), 6000);
    assert_eq!(options.get_username(), "u");
    assert_eq!(options.get_database(), Some("envdb"));
    assert_eq!(options.get_application_name(), Some("envapp"));

    let bad = parse("host=h")
        .unwrap()
        .resolve(&env_of(&[("PGPORT", "x")]));
    let err = bad.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("PGPORT"), "{}", err.message);
}

#[test]
fn defaults() {
    let resolved = parse("host=h")
        .unwrap()
        .resolve(&env_of(&[("PGUSER", "bob")]))
        .unwrap();
    assert_eq!(resolved.port(), 5432);
    // The database defaults to the user name.
    assert_eq!(resolved.dbname(), "bob");
    assert!(matches!(resolved.ssl_mode(), PgSslMode::Prefer));
    assert_eq!(resolved.connect_timeout(), None);

    let resolved = parse("port=5432").unwrap().resolve(&env_of(&[])).unwrap();
    let expected_host = if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
        DEFAULT_SOCKET_DIR
    } else {
        "localhost"
    };
    assert_eq!(resolved.host(), expected_host);
    // The user defaults to the account we run as.
    assert!(!resolved.user().is_empty());
    assert_eq!(resolved.dbname(), resolved.user());
}

#[test]
fn hostaddr_and_port_lists() {
    let resolved = parse("host=db.example.com hostaddr=10.0.0.5 port=5433")
        .unwrap()
        .resolve(&env_of(&[("PGUSER", "u")]))
        .unwrap();
    assert_eq!(resolved.host(), "db.example.com");
    assert_eq!(resolved.connect_options(None).get_host(), "10.0.0.5");
    let err = parse("host=a,b,c port=1,2")
        .unwrap()
        .resolve(&env_of(&[("PGUSER", "u")]))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("port numbers"), "{}", err.message);
}

#[test]
fn server_options_are_passed_on() {
    let resolved =
        parse(r"host=h user=u options='-c geqo=off --statement_timeout=5min -csearch_path=a,\\ b'")
            .unwrap()
            .resolve(&env_of(&[]))
            .unwrap();
    let options = resolved.connect_options(None);
    assert_eq!(
        options.get_options(),
        Some(r"-c geqo=off -c statement_timeout=5min -c search_path=a,\ b")
    );
    let err = parse("host=h user=u options='-B 100'")
        .unwrap()
        .resolve(&env_of(&[]))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
}

#[test]
fn service_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("services.conf");
    fs::write(
        &file,
        "# comment\n[other]\nhost=wrong\n\n[sales]\nhost = sales-db\nport=6543\n\
         dbname=sales\npassword=ServicePw\n[after]\nhost=wrong\n",
    )
    .unwrap();
    let env = env_of(&[
        ("PGSERVICEFILE", file.to_str().unwrap()),
        ("PGSYSCONFDIR", dir.path().to_str().unwrap()),
        ("HOME", dir.path().to_str().unwrap()),
        ("PGHOST", "env-host"),
        ("PGUSER", "envuser"),
        ("PGPORT", "7000"),
    ]);
    let resolved = parse("service=sales port=5000")
        .unwrap()
        .resolve(&env)
        .unwrap();
    // Explicit keywords win over the service file...
    assert_eq!(resolved.port(), 5000);
    // ...which wins over the environment...
    assert_eq!(resolved.host(), "sales-db");
    assert_eq!(resolved.dbname(), "sales");
    assert_eq!(resolved.password(), Some("ServicePw"));
    // ...which fills the rest.
    assert_eq!(resolved.user(), "envuser");

    // PGSERVICE names the service when the string does not.
    let env_service = env_of(&[
        ("PGSERVICE", "sales"),
        ("PGSERVICEFILE", file.to_str().unwrap()),
        ("HOME", dir.path().to_str().unwrap()),
        ("PGUSER", "u"),
    ]);
    let resolved = parse("user=u").unwrap().resolve(&env_service).unwrap();
    assert_eq!(resolved.host(), "sales-db");

    // The system-wide file is searched after the user's.
    let sysdir = tempfile::tempdir().unwrap();
    fs::write(
        sysdir.path().join("pg_service.conf"),
        "[sys]\nhost=sys-db\n",
    )
    .unwrap();
    let env_sys = env_of(&[
        ("PGSERVICEFILE", file.to_str().unwrap()),
        ("PGSYSCONFDIR", sysdir.path().to_str().unwrap()),
        ("PGUSER", "u"),
    ]);
    let resolved = parse("service=sys").unwrap().resolve(&env_sys).unwrap();
    assert_eq!(resolved.host(), "sys-db");

    // An unknown service names the files searched.
    let err = parse("service=nope").unwrap().resolve(&env).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("\"nope\""), "{}", err.message);
    assert!(
        err.message.contains(file.to_str().unwrap()),
        "{}",
        err.message
    );
    assert!(err.message.contains("pg_service.conf"), "{}", err.message);

    // Syntax errors name the file and line, and never quote the value.
    let broken = dir.path().join("broken.conf");
    fs::write(&broken, "[b]\nhost=h\npassword BadPw\n").unwrap();
    let env_broken = env_of(&[("PGSERVICEFILE", broken.to_str().unwrap()), ("PGUSER", "u")]);
    let err = parse("service=b")
        .unwrap()
        .resolve(&env_broken)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("line 3"), "{}", err.message);
    assert!(!err.to_string().contains("BadPw"));
}

#[test]
fn pgpass_matching() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    write_private(
        &file,
        "# comment\n\
         db1:5432:sales:alice:first\n\
         db1:5432:sales:alice:second\n\
         db1:*:*:bob:bob\\:pw\\\\x\n\
         ho\\:st:5432:*:*:escaped\n\
         ::1:5432:*:*:v6\n\
         localhost:5432:*:carol:local\r\n\
         /srv/sock:5432:*:carol:custom-socket\n\
         *:*:*:*:fallback:ignored-field\n",
    );
    let find = |host, port, db, user| pgpass_lookup(&file, host, port, db, user);
    // The first matching line wins.
    assert_eq!(
        find("db1", 5432, "sales", "alice").as_deref(),
        Some("first")
    );
    // "*" matches anything; "\:" and "\\" are escapes in the password.
    assert_eq!(
        find("db1", 6000, "any", "bob").as_deref(),
        Some("bob:pw\\x")
    );
    // "\:" in a field matches ":".
    assert_eq!(find("ho:st", 5432, "d", "u").as_deref(), Some("escaped"));
    // An unescaped IPv6 address still matches, as in libpq.
    assert_eq!(find("::1", 5432, "d", "u").as_deref(), Some("v6"));
    // localhost stands for the default socket folder and for no host; CR LF is fine.
    assert_eq!(
        find("localhost", 5432, "d", "carol").as_deref(),
        Some("local")
    );
    assert_eq!(
        find("/var/run/postgresql", 5432, "d", "carol").as_deref(),
        Some("local")
    );
    assert_eq!(find("", 5432, "d", "carol").as_deref(), Some("local"));
    // Any other socket folder is matched by its path.
    assert_eq!(
        find("/srv/sock", 5432, "d", "carol").as_deref(),
        Some("custom-socket")
    );
    // The password ends at the next unescaped ":".
    assert_eq!(find("other", 1, "d", "u").as_deref(), Some("fallback"));
    // A file the group or others can read is ignored, as libpq ignores it.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(find("db1", 5432, "sales", "alice"), None);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o604)).unwrap();
    assert_eq!(find("db1", 5432, "sales", "alice"), None);
    // A missing file or a folder gives nothing.
    assert_eq!(
        pgpass_lookup(&dir.path().join("none"), "h", 5432, "d", "u"),
        None
    );
    assert_eq!(pgpass_lookup(dir.path(), "h", 5432, "d", "u"), None);
}

#[test]
fn password_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join(".pgpass");
    write_private(
        &pgpass,
        "h:5432:d:u:from-pgpass\nlocalhost:5432:d:u:socket-pw\n",
    );
    let env = env_of(&[("HOME", dir.path().to_str().unwrap())]);

    let plain = parse("host=h dbname=d user=u")
        .unwrap()
        .resolve(&env)
        .unwrap();
    assert_eq!(plain.passfile(), Some(pgpass.as_path()));
    // The keyring's password wins...
    assert_eq!(
        plain.effective_password(Some("keyring")).as_deref(),
        Some("keyring")
    );
    // ...else .pgpass (~/.pgpass by default).
    assert_eq!(
        plain.effective_password(None).as_deref(),
        Some("from-pgpass")
    );
    // A replication connection matches lines for the database `replication`, as libpq does.
    assert_eq!(plain.replication_password(None), None);
    write_private(
        &pgpass,
        "h:5432:d:u:from-pgpass\nh:5432:replication:u:repl-pw\nlocalhost:5432:d:u:socket-pw\n",
    );
    assert_eq!(plain.replication_password(None).as_deref(), Some("repl-pw"));
    assert_eq!(
        plain.effective_password(None).as_deref(),
        Some("from-pgpass")
    );

    // The string's password wins over .pgpass.
    let with_pw = parse("host=h dbname=d user=u password=dsn")
        .unwrap()
        .resolve(&env)
        .unwrap();
    assert_eq!(with_pw.effective_password(None).as_deref(), Some("dsn"));
    assert_eq!(
        with_pw.effective_password(Some("keyring")).as_deref(),
        Some("keyring")
    );

    // passfile= and PGPASSFILE name another file.
    let other = dir.path().join("other");
    write_private(&other, "*:*:*:*:other-file\n");
    let env_file = env_of(&[
        ("HOME", dir.path().to_str().unwrap()),
        ("PGPASSFILE", other.to_str().unwrap()),
    ]);
    let via_env = parse("host=h dbname=d user=u")
        .unwrap()
        .resolve(&env_file)
        .unwrap();
    assert_eq!(
        via_env.effective_password(None).as_deref(),
        Some("other-file")
    );
    let keyword = format!("host=h dbname=d user=u passfile={}", pgpass.display());
    let via_keyword = parse(&keyword).unwrap().resolve(&env_file).unwrap();
    assert_eq!(
        via_keyword.effective_password(None).as_deref(),
        Some("from-pgpass")
    );

    // A socket in the default folder matches "localhost" lines.
    let socket = parse("host=/var/run/postgresql dbname=d user=u")
        .unwrap()
        .resolve(&env)
        .unwrap();
    assert_eq!(
        socket.effective_password(None).as_deref(),
        Some("socket-pw")
    );
}
