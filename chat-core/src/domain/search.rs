//! Full-text search: how message text is split into words, for indexing and for queries alike.
//!
//! Both sides use [`words`], so every store matches the same way whatever its own tokenizer
//! does: stores index [`index_text`] (the words, lowercased, joined by spaces) and match the
//! words of a [`SearchQuery`] exactly. No character of a query has a meaning of its own, so no
//! query can be malformed.

/// The most words a query uses; later words are ignored.
pub const MAX_QUERY_WORDS: usize = 16;

/// The longest word, in characters; longer ones are cut (on both sides alike).
pub const MAX_WORD_CHARS: usize = 64;

/// The words of a text: maximal runs of letters and digits, lowercased, cut to
/// [`MAX_WORD_CHARS`].
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            // Lowercasing can add marks that are not alphanumeric (İ becomes i and a combining
            // dot): they are dropped, so every word stays letters and digits only.
            w.chars()
                .flat_map(char::to_lowercase)
                .filter(|c| c.is_alphanumeric())
                .take(MAX_WORD_CHARS)
                .collect()
        })
}

/// What a store indexes for a message body: its words joined by single spaces.
pub fn index_text(body: &str) -> String {
    words(body).collect::<Vec<_>>().join(" ")
}

/// A search: the distinct words a message must all contain. Built from any text; a text
/// without words gives a query that matches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<String>,
}

impl SearchQuery {
    /// The query for a user's search text.
    pub fn new(text: &str) -> SearchQuery {
        let mut unique: Vec<String> = Vec::new();
        for word in words(text) {
            if unique.len() == MAX_QUERY_WORDS {
                break;
            }
            if !unique.contains(&word) {
                unique.push(word);
            }
        }
        SearchQuery { words: unique }
    }

    /// The words, lowercased and distinct; each is letters and digits only.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether the query has no words (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether a message body contains every word of the query.
    pub fn matches(&self, body: &str) -> bool {
        let have: Vec<String> = words(body).collect();
        !self.is_empty() && self.words.iter().all(|w| have.contains(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_alphanumeric_runs_lowercased() {
        assert_eq!(
            index_text("Hello, World! it's re-used"),
            "hello world it s re used"
        );
        assert_eq!(index_text("  ...  "), "");
        assert_eq!(index_text("Ünïcode ÄRGER"), "ünïcode ärger");
    }

    #[test]
    fn queries_have_no_syntax() {
        let q = SearchQuery::new("\"OR\" * NEAR( -x ) AND:1 ' ; DROP");
        assert_eq!(q.words(), ["or", "near", "x", "and", "1", "drop"]);
        assert!(SearchQuery::new("*** ???").is_empty());
        assert!(!SearchQuery::new("").matches("anything"));
    }

    #[test]
    fn a_query_matches_bodies_with_every_word() {
        let q = SearchQuery::new("lunch Friday");
        assert!(q.matches("Lunch on friday?"));
        assert!(!q.matches("lunch on monday"));
        assert!(!q.matches("lunchtime friday"));
    }

    #[test]
    fn queries_are_bounded() {
        let long: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(SearchQuery::new(&long).words().len(), MAX_QUERY_WORDS);
        let word = "x".repeat(1000);
        assert_eq!(SearchQuery::new(&word).words()[0].len(), MAX_WORD_CHARS);
        assert!(SearchQuery::new(&word).matches(&word));
    }
}
