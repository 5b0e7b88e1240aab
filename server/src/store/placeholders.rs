//! Bind placeholders for statements that carry many rows, in each backend's own style.

use std::fmt::Write;

use super::Backend;

/// Rows per multi-row statement: few enough that a statement stays far under every
/// backend's limit on parameters, many enough that a billing batch is a handful of
/// statements, each one hand-off to the database.
pub(super) const ROWS_PER_STATEMENT: usize = 256;

/// Rows a statement that answers with rows is written to return at most. sqlx hands a
/// SQLite result over from its connection thread through a buffer of 50 rows: a longer
/// result stalls that thread on the full buffer, and each row taken out then wakes it for
/// the next: two thread switches a row, which a result that fits the buffer never costs.
pub(super) const ROWS_PER_RESULT: usize = 48;

/// The placeholders of one statement, handed out in the order they appear in its text,
/// which is the order their values must be bound in: `$1, $2, …` on PostgreSQL, anonymous
/// `?` on SQLite.
///
/// SQLite finds a numbered parameter's name by walking the statement's list of names,
/// and sqlx asks for every parameter's, so binding n numbered parameters costs n²; an
/// anonymous one has no name to find, which lets one statement carry hundreds of rows.
pub(super) struct Placeholders {
    backend: Backend,
    issued: usize,
}

impl Placeholders {
    pub(super) fn new(backend: Backend) -> Self {
        Self { backend, issued: 0 }
    }

    /// The next placeholder.
    pub(super) fn next(&mut self) -> String {
        let mut placeholder = String::with_capacity(4);
        self.push_next(&mut placeholder);
        placeholder
    }

    /// `count` placeholders separated by commas, for an `IN` list or one row.
    pub(super) fn list(&mut self, count: usize) -> String {
        let mut text = String::with_capacity(count * 5);
        self.push_list(&mut text, count);
        text
    }

    /// `(…), (…), …`: `rows` rows of `columns` placeholders each, for `VALUES`.
    pub(super) fn rows(&mut self, rows: usize, columns: usize) -> String {
        // Written into one string: a billing batch's statements carry thousands of
        // placeholders, and a string apiece was a good share of a renewal's allocations.
        let mut text = String::with_capacity(rows * (columns * 5 + 4));
        for row in 0..rows {
            if row > 0 {
                text.push_str(", ");
            }
            text.push('(');
            self.push_list(&mut text, columns);
            text.push(')');
        }
        text
    }

    fn push_list(&mut self, text: &mut String, count: usize) {
        for index in 0..count {
            if index > 0 {
                text.push_str(", ");
            }
            self.push_next(text);
        }
    }

    fn push_next(&mut self, text: &mut String) {
        self.issued += 1;
        match self.backend {
            Backend::Sqlite => text.push('?'),
            // Writing to a String cannot fail.
            Backend::Postgres => {
                let _ = write!(text, "${}", self.issued);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_numbers_placeholders_in_the_order_they_are_written() {
        let mut placeholders = Placeholders::new(Backend::Postgres);
        let rows = placeholders.rows(2, 2);
        let last = placeholders.next();
        assert_eq!(rows, "($1, $2), ($3, $4)");
        assert_eq!(last, "$5");
    }

    #[test]
    fn sqlite_placeholders_are_anonymous() {
        let mut placeholders = Placeholders::new(Backend::Sqlite);
        assert_eq!(placeholders.list(3), "?, ?, ?");
        assert_eq!(placeholders.rows(2, 1), "(?), (?)");
    }
}
