use proptest::prelude::*;

use super::*;

fn excluded(rules: &str, path: &str, is_dir: bool) -> bool {
    IgnoreMatcher::parse(rules).expect("valid rules").is_excluded(path, is_dir)
}

#[test]
fn table_of_rules() {
    // (rules, path, is_dir, excluded)
    let table: &[(&str, &str, bool, bool)] = &[
        // nothing, blank lines and comments exclude nothing
        ("", "a", false, false),
        ("\n   \n\t\n", "a", false, false),
        ("# a", "a", false, false),
        ("#a\n", "#a", false, false),
        // a leading space before # makes it a pattern, as in docker (the line is trimmed after the comment check)
        (" #a", "#a", false, true),
        // plain names, root-relative
        ("a", "a", false, true),
        ("a", "b", false, false),
        ("a", "x/a", false, false),
        ("  a  ", "a", false, true),
        // parent directories match
        ("a", "a/b/c", false, true),
        ("a/b", "a/b/c", false, true),
        ("a/b", "a", true, false),
        ("a/b", "a/c", false, false),
        // leading / anchors (no change), ./ and // are cleaned, .. resolved
        ("/a", "a", false, true),
        ("/a", "x/a", false, false),
        ("./a//b/", "a/b", true, true),
        ("a/../b", "b", false, true),
        ("a/../b", "a", false, false),
        ("../a", "a", false, false),
        ("/", "a", false, false),
        (".", "a", false, false),
        // trailing / matches directories only, but what lies under them regardless
        ("build/", "build", true, true),
        ("build/", "build", false, false),
        ("build/", "build/x", false, true),
        ("a/b/", "a/b", false, false),
        // * and ? within one segment
        ("*.log", "x.log", false, true),
        ("*.log", "d/x.log", false, false),
        ("*/x.log", "d/x.log", false, true),
        ("*/x.log", "d/e/x.log", false, false),
        ("*", "anything/at/all", false, true),
        ("a*", "a", false, true),
        ("a*b", "axxb", false, true),
        ("a*b", "axxbc", false, false),
        ("a*b*c", "abxbc", false, true),
        ("?", "a", false, true),
        ("?", "ab", false, false),
        ("a?c", "abc", false, true),
        ("a?c", "a/c", false, false),
        ("*", "", false, false),
        // escapes
        ("\\*", "*", false, true),
        ("\\*", "a", false, false),
        ("a\\?", "a?", false, true),
        ("a\\?", "ab", false, false),
        // negation and last-match-wins
        ("*\n!keep", "keep", false, false),
        ("*\n!keep", "other", false, true),
        ("!keep\n*", "keep", false, true),
        ("dir\n!dir/keep", "dir/keep", false, false),
        ("dir\n!dir/keep", "dir/keep/inner", false, false),
        ("dir\n!dir/keep", "dir/other", false, true),
        ("dir\n!dir/keep\ndir/keep/x", "dir/keep/x", false, true),
        ("! a", "a", false, false),
        ("a\n!", "a", false, true),
        // paths given with ./, // or a trailing /
        ("a/b", "./a//b/", true, true),
        // non-ASCII names are matched by character
        ("?.txt", "é.txt", false, true),
        // BOM and CRLF
        ("\u{feff}a\r\nb\r\n", "a", false, true),
        ("\u{feff}a\r\nb\r\n", "b", false, true),
    ];
    for (rules, path, is_dir, want) in table {
        assert_eq!(excluded(rules, path, *is_dir), *want, "rules {rules:?} path {path:?} dir {is_dir}");
    }
}

#[test]
fn unsupported_syntax_is_refused_with_the_line() {
    let cases: &[(&str, IgnoreError)] = &[
        ("a\n\n**/x", IgnoreError::DoubleStar { line: 3, text: "**/x".into() }),
        ("a/**", IgnoreError::DoubleStar { line: 1, text: "a/**".into() }),
        ("# c\n  !x**y  ", IgnoreError::DoubleStar { line: 2, text: "!x**y".into() }),
        ("[abc]", IgnoreError::CharacterClass { line: 1, text: "[abc]".into() }),
        ("x\n*.[ch]", IgnoreError::CharacterClass { line: 2, text: "*.[ch]".into() }),
        ("a\\", IgnoreError::TrailingEscape { line: 1, text: "a\\".into() }),
    ];
    for (rules, want) in cases {
        assert_eq!(IgnoreMatcher::parse(rules).unwrap_err(), *want, "rules {rules:?}");
    }
    let msg = IgnoreMatcher::parse("ok\n**/node_modules").unwrap_err().to_string();
    assert!(msg.contains("line 2") && msg.contains("**/node_modules"), "{msg}");
    let long = format!("**/{}", "é".repeat(500));
    let msg = IgnoreMatcher::parse(&long).unwrap_err().to_string();
    assert!(msg.contains('…') && msg.chars().count() < 250, "a long line is quoted cut: {msg}");
}

#[test]
fn escaped_brackets_and_stars_are_literal() {
    assert!(excluded("\\[a\\]", "[a]", false));
    assert!(excluded("\\*\\*", "**", false));
    assert!(!excluded("#x\n", "y", false));
    assert!(IgnoreMatcher::parse("# [x] **\n").unwrap().is_empty());
    assert!(!IgnoreMatcher::parse("a\nb").unwrap().has_negations());
    assert!(IgnoreMatcher::parse("a\n!b").unwrap().has_negations());
}

// ---- the reference model: rules as plain strings, matched by a naive recursive glob ----

fn model_glob(p: &[u8], n: &[u8]) -> bool {
    match (p.first(), n.first()) {
        (None, None) => true,
        (Some(b'*'), _) => model_glob(&p[1..], n) || (!n.is_empty() && model_glob(p, &n[1..])),
        (Some(b'?'), Some(_)) => model_glob(&p[1..], &n[1..]),
        (Some(a), Some(b)) if a == b => model_glob(&p[1..], &n[1..]),
        _ => false,
    }
}

/// A rule of the model: negation, directory-only, segments.
type ModelRule = (bool, bool, Vec<String>);

fn model_matches(rule: &ModelRule, path: &[String], is_dir: bool) -> bool {
    let (_, dir_only, segs) = rule;
    (1..=path.len()).any(|len| {
        let is_dir_here = len < path.len() || is_dir;
        len == segs.len() && (!dir_only || is_dir_here) && segs.iter().zip(path).all(|(p, n)| model_glob(p.as_bytes(), n.as_bytes()))
    })
}

fn model_excluded(rules: &[ModelRule], path: &[String], is_dir: bool) -> bool {
    rules.iter().rev().find(|r| model_matches(r, path, is_dir)).is_some_and(|r| !r.0)
}

fn segment() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "ab", "*", "?", "a*", "*b", "?b", "a?"]).prop_map(str::to_owned)
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "ab", "ba", "abb", "c"]).prop_map(str::to_owned)
}

fn rule() -> impl Strategy<Value = ModelRule> {
    (any::<bool>(), any::<bool>(), prop::collection::vec(segment(), 1..4))
}

fn render(rules: &[ModelRule]) -> String {
    rules
        .iter()
        .map(|(neg, dir, segs)| format!("{}{}{}\n", if *neg { "!" } else { "" }, segs.join("/"), if *dir { "/" } else { "" }))
        .collect()
}

proptest! {
    #[test]
    fn excluded_iff_the_last_matching_rule_is_not_a_negation(
        rules in prop::collection::vec(rule(), 0..6),
        path in prop::collection::vec(name(), 1..5),
        is_dir in any::<bool>(),
    ) {
        let matcher = IgnoreMatcher::parse(&render(&rules)).unwrap();
        prop_assert_eq!(matcher.is_excluded(&path.join("/"), is_dir), model_excluded(&rules, &path, is_dir));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[a-z*?!#/\\\\\\[\\] \n.]{0,40}", path in "[a-z/.]{0,12}", is_dir in any::<bool>()) {
        if let Ok(m) = IgnoreMatcher::parse(&text) {
            let _ = m.is_excluded(&path, is_dir);
        }
    }
}
