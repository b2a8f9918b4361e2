//! whim-core stays pure: its dependency list is exactly this, nothing that does I/O.

#[test]
fn core_dependencies_are_exactly_the_pure_ones() {
    let manifest = include_str!("../Cargo.toml");
    let mut deps = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            deps.push(line.split(['=', '.']).next().unwrap_or_default().trim().to_owned());
        }
    }
    deps.sort();
    assert_eq!(deps, ["memchr", "serde", "serde_json", "thiserror"], "core must not grow I/O dependencies");
}
