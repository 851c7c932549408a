//! "Did you mean …?" for misspelt field and property names.

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_the_near_miss() {
        assert_eq!(super::closest("amout", ["amount", "balance"]), Some("amount"));
        assert_eq!(super::closest("zzzzzz", ["amount", "balance"]), None);
    }
}
