//! A small HTML writer that cannot be talked into markup: tags go in only as `&'static str`
//! (written in this program), every other string through [`Html::text`], which escapes it. So
//! a mapping, project, URL or error text from the config, the state database or a server shows
//! as text, whatever it contains.

/// An HTML document being written.
#[derive(Default)]
pub(super) struct Html {
    out: String,
}

impl Html {
    pub fn new() -> Self {
        Html::default()
    }

    /// Markup of this program's own.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// Text, escaped for element content and for quoted attribute values alike.
    pub fn text(&mut self, s: &str) -> &mut Self {
        for c in s.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                '\'' => self.out.push_str("&#39;"),
                c => self.out.push(c),
            }
        }
        self
    }

    pub fn num(&mut self, n: u64) -> &mut Self {
        self.out.push_str(&n.to_string());
        self
    }

    /// `<a href="…">label</a>` to an http(s) URL or a path of this server; anything else (a
    /// `javascript:` URL, credentials in the URL) is shown as the label alone.
    pub fn link(&mut self, href: &str, label: &str) -> &mut Self {
        if !safe_href(href) {
            return self.text(label);
        }
        self.raw("<a href=\"")
            .text(href)
            .raw("\" rel=\"noreferrer\">")
            .text(label)
            .raw("</a>")
    }

    /// The lead-time chart as `report --svg` draws it. That code writes its own markup and
    /// escapes every name it draws; nothing else may come through here.
    pub fn chart(&mut self, svg: &crate::report::Chart) -> &mut Self {
        self.out.push_str(svg.as_str());
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// An absolute http(s) URL without user information, or a path on this server.
fn safe_href(href: &str) -> bool {
    let rest = href
        .strip_prefix("https://")
        .or_else(|| href.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            !authority.is_empty() && !authority.contains('@')
        }
        None => href.starts_with('/') && !href.starts_with("//"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere_and_only_markup_is_raw() {
        let mut h = Html::new();
        h.raw("<p title=\"")
            .text("\"><script>alert('x')</script>&")
            .raw("\">")
            .text("<b>VSA->acme/<i>x</i></b>")
            .num(42)
            .raw("</p>");
        assert_eq!(
            h.finish(),
            "<p title=\"&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;\">\
             &lt;b&gt;VSA-&gt;acme/&lt;i&gt;x&lt;/i&gt;&lt;/b&gt;42</p>"
        );
    }

    #[test]
    fn links_go_only_to_web_pages_or_this_server() {
        let link = |href: &str| {
            let mut h = Html::new();
            h.link(href, "<x>");
            h.finish()
        };
        assert_eq!(
            link("https://gitlab.example.com/acme/a\"b"),
            "<a href=\"https://gitlab.example.com/acme/a&quot;b\" rel=\"noreferrer\">&lt;x&gt;</a>"
        );
        assert_eq!(
            link("/metrics"),
            "<a href=\"/metrics\" rel=\"noreferrer\">&lt;x&gt;</a>"
        );
        for unsafe_href in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,<script>",
            "//evil.example.com/",
            "https://user:token@gitlab.example.com/acme",
            "https://",
            "acme/platform",
        ] {
            assert_eq!(link(unsafe_href), "&lt;x&gt;", "{unsafe_href}");
        }
    }
}
