//! The reference CLI's boxed tables (xlab/tablewriter in UTF-8 box mode): an optional
//! centred title, a header row, left-aligned cells padded by one space, separator lines.

/// A table being built; [`Table::render`] draws it.
#[derive(Debug, Default)]
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Row>,
}

#[derive(Debug)]
enum Row {
    Cells(Vec<String>),
    Separator,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

impl Table {
    pub fn new(title: &str) -> Table {
        Table {
            title: title.to_string(),
            ..Table::default()
        }
    }

    pub fn headers<S: ToString>(&mut self, cells: &[S]) {
        self.headers = cells.iter().map(|c| c.to_string()).collect();
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(Row::Cells(cells));
    }

    pub fn separator(&mut self) {
        self.rows.push(Row::Separator);
    }

    /// Column widths; a title wider than the columns widens the last one.
    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = Vec::new();
        let cells =
            std::iter::once(&self.headers).chain(self.rows.iter().filter_map(|r| match r {
                Row::Cells(c) => Some(c),
                Row::Separator => None,
            }));
        for row in cells {
            for (i, c) in row.iter().enumerate() {
                if i >= w.len() {
                    w.push(0);
                }
                w[i] = w[i].max(width(c));
            }
        }
        if w.is_empty() {
            w.push(0);
        }
        let inner = w.iter().map(|c| c + 2).sum::<usize>() + w.len() - 1;
        let need = width(&self.title) + 2;
        if !self.title.is_empty() && need > inner {
            if let Some(last) = w.last_mut() {
                *last += need - inner;
            }
        }
        w
    }

    pub fn render(&self) -> String {
        let w = self.widths();
        let rule = |l: &str, m: &str, r: &str| {
            let parts: Vec<String> = w.iter().map(|c| "─".repeat(c + 2)).collect();
            format!("{l}{}{r}\n", parts.join(m))
        };
        let line = |cells: &[String]| {
            let mut s = String::from("│");
            for (i, c) in cells.iter().enumerate() {
                let pad = w.get(i).copied().unwrap_or(0).saturating_sub(width(c));
                s.push_str(&format!(" {c}{} │", " ".repeat(pad)));
            }
            s.push('\n');
            s
        };
        let mut out = String::new();
        if self.title.is_empty() {
            out.push_str(&rule("╭", "┬", "╮"));
        } else {
            let inner = w.iter().map(|c| c + 2).sum::<usize>() + w.len() - 1;
            let t = width(&self.title);
            let left = (inner - t) / 2;
            out.push_str(&format!("╭{}╮\n", "─".repeat(inner)));
            out.push_str(&format!(
                "│{}{}{}│\n",
                " ".repeat(left),
                self.title,
                " ".repeat(inner - t - left)
            ));
            out.push_str(&rule("├", "┬", "┤"));
        }
        if !self.headers.is_empty() {
            out.push_str(&line(&self.headers));
            out.push_str(&rule("├", "┼", "┤"));
        }
        for r in &self.rows {
            match r {
                Row::Cells(c) => out.push_str(&line(c)),
                Row::Separator => out.push_str(&rule("├", "┼", "┤")),
            }
        }
        out.push_str(&rule("╰", "┴", "╯"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_reference() {
        // xlab/tablewriter's own UTF-8 test case.
        let mut t = Table::new("Example");
        t.headers(&["Name", "Value"]);
        for (a, b) in [
            ("hey", "you"),
            ("ken", "1234"),
            ("derek", "3.14"),
            ("derek too", "3.15"),
            ("escaping", "rox%%"),
        ] {
            t.row(vec![a.into(), b.into()]);
        }
        let want = "╭───────────────────╮\n\
                    │      Example      │\n\
                    ├───────────┬───────┤\n\
                    │ Name      │ Value │\n\
                    ├───────────┼───────┤\n\
                    │ hey       │ you   │\n\
                    │ ken       │ 1234  │\n\
                    │ derek     │ 3.14  │\n\
                    │ derek too │ 3.15  │\n\
                    │ escaping  │ rox%% │\n\
                    ╰───────────┴───────╯\n";
        assert_eq!(t.render(), want);
    }

    #[test]
    fn wide_title_widens_the_last_column() {
        let mut t = Table::new("Example My Foo Bar'd Test");
        t.headers(&["Name", "Value"]);
        t.row(vec!["derek too".into(), "3.15".into()]);
        t.separator();
        t.row(vec!["x".into(), "y".into()]);
        let want = "╭───────────────────────────╮\n\
                    │ Example My Foo Bar'd Test │\n\
                    ├───────────┬───────────────┤\n\
                    │ Name      │ Value         │\n\
                    ├───────────┼───────────────┤\n\
                    │ derek too │ 3.15          │\n\
                    ├───────────┼───────────────┤\n\
                    │ x         │ y             │\n\
                    ╰───────────┴───────────────╯\n";
        assert_eq!(t.render(), want);
    }
}
