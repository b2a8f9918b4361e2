//! Downloads from a loopback HTTPS server trusted through `extra_root_certs_pem`.

use super::server::{Pki, Reply, Server};
use super::*;

const TOKEN: &str = "ghp_SECRETtoken123";
const HEADER_VALUE: &str = "hdr-SECRET-value-456";

fn trusting(pki: &Pki) -> ContextOptions {
    ContextOptions { extra_root_certs_pem: vec![pki.ca_pem.clone()], ..opts() }
}

fn https(url: String) -> Source {
    Source::parse(&url).unwrap()
}

fn serve(pki: &Pki, body: Vec<u8>) -> Server {
    Server::start(pki, move |_| Reply::Body(body.clone()))
}

#[test]
fn https_zip_targz_and_raw_dockerfile() {
    let pki = Pki::new();
    let items = [Dir("proj-1/"), f("proj-1/Dockerfile", b"FROM web\n"), File("proj-1/x.sh", b"x", 0o755)];
    let o = ContextOptions { https_headers: vec![("X-Api-Key".into(), Secret::new(HEADER_VALUE.into()))], ..trusting(&pki) };
    for body in [make_zip(&items), make_targz(&items)] {
        let server = serve(&pki, body);
        let out = prepare(&https(server.url("127.0.0.1", "/a/src.bin?sig=abc")), &o).unwrap();
        let got = unzip(&out.zip);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["Dockerfile", "x.sh"]);
        assert_eq!(got["x.sh"], Got::File(0o755, b"x".to_vec()));
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/a/src.bin?sig=abc");
        assert_eq!(seen[0].header("x-api-key"), Some(HEADER_VALUE));
    }
    let server = serve(&pki, b"FROM raw\nRUN true\n".to_vec());
    let out = prepare(&https(server.url("localhost", "/Dockerfile")), &trusting(&pki)).unwrap();
    assert_eq!(
        unzip(&out.zip).into_iter().collect::<Vec<_>>(),
        [("Dockerfile".to_owned(), Got::File(0o644, b"FROM raw\nRUN true\n".to_vec()))]
    );
    assert_eq!(out.files, 1);
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let pki = Pki::new();
    let server = serve(&pki, b"FROM x\n".to_vec());
    let err = prepare(&https(server.url("127.0.0.1", "/Dockerfile")), &opts()).unwrap_err();
    assert!(matches!(&err, Error::InvalidSource(m) if m.to_lowercase().contains("certificate")), "{err:?}");
    let bad_pem = ContextOptions { extra_root_certs_pem: vec![b"not pem".to_vec()], ..opts() };
    assert!(matches!(prepare(&https(server.url("127.0.0.1", "/Dockerfile")), &bad_pem), Err(Error::InvalidOption(_))));
}

/// A fake GitHub: the API redirects the zipball to a "codeload" host (`localhost` on
/// another port), which serves a zip wrapped in `org-repo-sha/`.
fn fake_github(pki: &Pki) -> (Server, Server) {
    let zip = make_zip(&[
        Dir("org-repo-abc123/"),
        f("org-repo-abc123/Dockerfile", b"FROM gh\n"),
        f("org-repo-abc123/sub/Dockerfile", b"FROM sub\n"),
    ]);
    let codeload = Server::start(pki, move |_| Reply::Body(zip.clone()));
    let target = codeload.url("localhost", "/org/repo/legacy.zip/refs/heads/main?token=short-lived");
    let api =
        Server::start(
            pki,
            move |path| if path.starts_with("/repos/org/repo/zipball/") { Reply::Redirect(target.clone()) } else { Reply::Status(404) },
        );
    (api, codeload)
}

#[test]
fn github_sources_send_the_token_only_to_the_api_host() {
    let pki = Pki::new();
    let (api, codeload) = fake_github(&pki);
    let o = ContextOptions { github_token: Some(Secret::new(TOKEN.into())), github_api_base: api.url("127.0.0.1", ""), ..trusting(&pki) };
    let source = Source::parse("github.com/org/repo@main").unwrap();
    let out = prepare(&source, &o).unwrap();
    assert_eq!(unzip(&out.zip)["Dockerfile"], Got::File(0o644, b"FROM gh\n".to_vec()));
    let seen = api.seen();
    assert_eq!(seen[0].path, "/repos/org/repo/zipball/main");
    assert_eq!(seen[0].header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert!(seen[0].headers.iter().filter(|(_, v)| v.contains(TOKEN)).all(|(k, _)| k == "authorization"));
    assert!(!seen[0].path.contains(TOKEN));
    let seen = codeload.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), None, "the cross-host redirect must drop the token");
    assert!(seen[0].headers.iter().all(|(_, v)| !v.contains(TOKEN)));
    // --context-subdir inside the unwrapped repository
    let sub = ContextOptions { context_subdir: Some("sub".into()), ..o.clone() };
    assert_eq!(unzip(&prepare(&source, &sub).unwrap().zip)["Dockerfile"], Got::File(0o644, b"FROM sub\n".to_vec()));
    // the default branch
    prepare(&Source::parse("github.com/org/repo").unwrap(), &o).unwrap();
    assert_eq!(api.seen().last().unwrap().path, "/repos/org/repo/zipball/HEAD");
}

#[test]
fn headers_follow_same_host_redirects_only() {
    let pki = Pki::new();
    let body = make_zip(&[f("Dockerfile", b"F")]);
    let other = serve(&pki, body.clone());
    let elsewhere = other.url("localhost", "/final.zip");
    let first = Server::start(&pki, move |path| match path {
        "/start" => Reply::Redirect("/same-host".into()),
        "/same-host" => Reply::Redirect(elsewhere.clone()),
        _ => Reply::Status(404),
    });
    let o = ContextOptions { https_headers: vec![("X-Api-Key".into(), Secret::new(HEADER_VALUE.into()))], ..trusting(&pki) };
    prepare(&https(first.url("127.0.0.1", "/start")), &o).unwrap();
    let seen = first.seen();
    assert_eq!(seen.iter().map(|s| s.header("x-api-key")).collect::<Vec<_>>(), [Some(HEADER_VALUE), Some(HEADER_VALUE)]);
    assert_eq!(other.seen()[0].header("x-api-key"), None);
}

#[test]
fn bad_downloads_are_refused_without_leaking_secrets() {
    let pki = Pki::new();
    let looping = Server::start(&pki, |path| Reply::Redirect(format!("{path}x")));
    let downgrade = Server::start(&pki, |_| Reply::Redirect("http://127.0.0.1:9/x.zip".into()));
    let userinfo = Server::start(&pki, |_| Reply::Redirect("https://user:pw-SECRET@127.0.0.1:9/x.zip".into()));
    let missing = Server::start(&pki, |_| Reply::Status(404));
    let huge = Server::start(&pki, |_| Reply::Announce(1 << 40));
    let big = serve(&pki, vec![b'A'; 5000]);
    let binary = serve(&pki, vec![0, 159, 146, 150]);
    let o = ContextOptions {
        https_headers: vec![("X-Api-Key".into(), Secret::new(HEADER_VALUE.into()))],
        github_token: Some(Secret::new(TOKEN.into())),
        limits: ContextLimits { max_compressed_bytes: 4096, ..ContextLimits::default() },
        github_api_base: missing.url("127.0.0.1", ""),
        ..trusting(&pki)
    };
    let cases: Vec<(Source, &str)> = vec![
        (https(looping.url("127.0.0.1", "/r")), "more than 5 redirects"),
        (https(downgrade.url("127.0.0.1", "/r")), "use https://"),
        (https(userinfo.url("127.0.0.1", "/r")), "credentials in a URL"),
        (https(missing.url("127.0.0.1", "/gone.zip?sig=QUERY-SECRET")), "HTTP 404"),
        (Source::parse("github.com/org/private@v1").unwrap(), "HTTP 404"),
        (https(huge.url("127.0.0.1", "/huge.zip")), "compressed size limit of 4096"),
        (https(big.url("127.0.0.1", "/big")), "compressed size limit of 4096"),
        (https(binary.url("127.0.0.1", "/bin")), "neither a zip"),
    ];
    for (source, want) in cases {
        let err = prepare(&source, &o).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains(want), "{text} lacks {want}");
        for secret in [TOKEN, HEADER_VALUE, "pw-SECRET", "QUERY-SECRET"] {
            assert!(!text.contains(secret), "{text} leaks {secret}");
        }
    }
    assert_eq!(looping.seen().len(), 6);
    assert!(matches!(prepare(&https(huge.url("127.0.0.1", "/huge.zip")), &o), Err(Error::SourceTooLarge(_))));
}
