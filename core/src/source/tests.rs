use proptest::prelude::*;

use super::*;

fn gh(owner: &str, repo: &str, reference: &str) -> Source {
    Source::GitHub { owner: owner.into(), repo: repo.into(), reference: reference.into() }
}

#[test]
fn every_kind_parses() {
    let table: Vec<(&str, Source)> = vec![
        (".", Source::Local { path: ".".into() }),
        ("./app", Source::Local { path: "./app".into() }),
        ("/abs/Dockerfile", Source::Local { path: "/abs/Dockerfile".into() }),
        ("  src.tar.gz ", Source::Local { path: "src.tar.gz".into() }),
        ("dir/with@sign", Source::Local { path: "dir/with@sign".into() }),
        ("s3://bucket/key.zip", Source::S3 { bucket: "bucket".into(), key: "key.zip".into() }),
        ("S3://my.bucket/a/b/c.tar.gz", Source::S3 { bucket: "my.bucket".into(), key: "a/b/c.tar.gz".into() }),
        ("https://example.com/a.zip", Source::Https { url: "https://example.com/a.zip".into() }),
        ("https://example.com:8443/a?x=1#f", Source::Https { url: "https://example.com:8443/a?x=1#f".into() }),
        ("https://127.0.0.1:1/Dockerfile", Source::Https { url: "https://127.0.0.1:1/Dockerfile".into() }),
        ("https://[::1]:443/x", Source::Https { url: "https://[::1]:443/x".into() }),
        ("HTTPS://example.com/a.zip", Source::Https { url: "https://example.com/a.zip".into() }),
        ("github.com/org/repo", gh("org", "repo", "HEAD")),
        ("github.com/org/repo@v1.2", gh("org", "repo", "v1.2")),
        ("GitHub.com/org/repo.git@feature/x", gh("org", "repo", "feature/x")),
        ("github.com/org/repo/", gh("org", "repo", "HEAD")),
        ("git+https://github.com/o-1/r_2.x@0123abc", gh("o-1", "r_2.x", "0123abc")),
        ("git+https://github.com/org/repo.git", gh("org", "repo", "HEAD")),
    ];
    for (text, want) in table {
        assert_eq!(Source::parse(text), Ok(want), "{text}");
    }
}

#[test]
fn refusals_say_what_to_do() {
    let table: &[(&str, SourceError)] = &[
        ("", SourceError::Empty),
        ("   ", SourceError::Empty),
        ("http://example.com/a.zip", SourceError::PlainHttp),
        ("HTTP://example.com/a.zip", SourceError::PlainHttp),
        ("ftp://example.com/a.zip", SourceError::UnknownScheme { scheme: "ftp".into() }),
        ("ssh://git@github.com/org/repo", SourceError::Userinfo),
        ("ssh://github.com/org/repo", SourceError::UnknownScheme { scheme: "ssh".into() }),
        ("file:///etc/passwd", SourceError::UnknownScheme { scheme: "file".into() }),
        ("we ird://x", SourceError::UnknownScheme { scheme: "?".into() }),
        ("git@github.com:org/repo.git", SourceError::SshGit),
        ("s3://", SourceError::BadS3("the key is missing")),
        ("s3://bucket", SourceError::BadS3("the key is missing")),
        ("s3://bucket/", SourceError::BadS3("the key is missing")),
        ("s3:///key", SourceError::BadS3("the bucket is missing")),
        ("s3://b%d/key", SourceError::BadS3("the bucket name has characters a bucket cannot have")),
        ("https://", SourceError::BadUrl("the host is missing: write https://host/path")),
        ("https:///path", SourceError::BadUrl("the host is missing: write https://host/path")),
        ("https://example.com", SourceError::BadUrl("the URL has no path: name the archive or Dockerfile to download")),
        ("https://example.com/", SourceError::BadUrl("the URL has no path: name the archive or Dockerfile to download")),
        ("https://exa mple.com/x", SourceError::BadUrl("the host has characters a host name cannot have")),
        ("https://example.com/a b", SourceError::BadUrl("the URL contains whitespace or control characters: percent-encode them")),
        ("https://example.com:99999/x", SourceError::BadUrl("the port is not a number from 0 to 65535")),
        ("https://example.com:/x", SourceError::BadUrl("the port is not a number from 0 to 65535")),
        ("git+https://gitlab.com/org/repo", SourceError::BadGitHub("only github.com repositories are supported")),
        ("github.com/org", SourceError::BadGitHub("the repository is missing")),
    ];
    for (text, want) in table {
        assert_eq!(Source::parse(text).as_ref(), Err(want), "{text}");
    }
}

#[test]
fn userinfo_is_refused_and_never_echoed() {
    for text in [
        "https://user:hunter2@example.com/a.zip",
        "https://hunter2@example.com/a.zip",
        "http://user:hunter2@example.com/a.zip",
        "git+https://hunter2@github.com/org/repo",
        "s3://hunter2@bucket/key",
        "ftp://user:hunter2@example.com/x",
    ] {
        let err = Source::parse(text).unwrap_err();
        assert_eq!(err, SourceError::Userinfo, "{text}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("user"), "{shown}");
        assert!(shown.contains("header"), "{shown}");
    }
    // an '@' after the host is a path character, not userinfo
    assert!(Source::parse("https://example.com/a@b.zip").is_ok());
}

#[test]
fn github_parts_cannot_reshape_the_url() {
    for text in [
        "github.com/../repo",
        "github.com/org/..",
        "github.com/org/.",
        "github.com/-org/repo",
        "github.com/org/repo@",
        "github.com/org/repo@../../x",
        "github.com/org/repo@a/../b",
        "github.com/org/repo@/abs",
        "github.com/org/repo@a//b",
        "github.com/org/repo@-x",
        "github.com/org/repo@x?y",
        "github.com/org/repo@x#y",
        "github.com/org/repo@x%2f",
        "github.com/org/repo@x y",
        "github.com/org/re po",
        "github.com/or g/repo",
        "github.com/org/repo/extra",
        "github.com/org/repo@a@b",
        "github.com/a.b/repo",
        "github.com//repo",
    ] {
        assert!(matches!(Source::parse(text), Err(SourceError::BadGitHub(_))), "{text}: {:?}", Source::parse(text));
    }
}

#[test]
fn display_round_trips_and_the_archive_url_is_built() {
    for text in ["s3://b/k", "https://example.com/a.zip", "github.com/o/r@v1", "./dir"] {
        let source = Source::parse(text).unwrap();
        assert_eq!(source.to_string(), text);
        assert_eq!(Source::parse(&source.to_string()).unwrap(), source);
    }
    // A presigned URL's signature is never shown.
    let presigned = Source::parse("https://example.com/a.zip?X-Amz-Signature=abc#frag").unwrap();
    assert_eq!(presigned.to_string(), "https://example.com/a.zip");
    assert_eq!(gh("o", "r", "HEAD").to_string(), "github.com/o/r@HEAD");
    assert_eq!(github_archive_url(GITHUB_API_BASE, "o", "r", "v1"), "https://api.github.com/repos/o/r/zipball/v1");
    assert_eq!(github_archive_url("https://127.0.0.1:9/", "o", "r", "a/b"), "https://127.0.0.1:9/repos/o/r/zipball/a/b");
}

proptest! {
    #[test]
    fn parsing_never_panics_and_never_echoes_userinfo(user in "[a-z]{6,10}", rest in "[ -~]{0,30}") {
        let text = format!("https://{user}@example.com/{rest}");
        let err = Source::parse(&text).unwrap_err();
        let shown = format!("{err}{err:?}");
        prop_assert!(!shown.contains(&user), "{}", shown);
        let _ = Source::parse(&rest);
    }

    #[test]
    fn parsed_github_parts_are_url_safe(text in "github\\.com/[a-z.\\-]{1,5}/[a-z._\\-]{1,5}(@[a-z./\\-]{1,8})?") {
        if let Ok(Source::GitHub { owner, repo, reference }) = Source::parse(&text) {
            let url = github_archive_url("https://h", &owner, &repo, &reference);
            let path = url.strip_prefix("https://h/repos/").unwrap();
            prop_assert!(!path.split('/').any(|c| c == ".." || c == "." || c.is_empty()), "{}", url);
        }
    }
}
