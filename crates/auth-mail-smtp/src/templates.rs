//! The mails' wording: minijinja templates, built in and overridable file by file (see
//! [`MailTemplates`]).

use std::fmt::Write as _;
use std::path::Path;

use auth_domain::model::{Mail, MailKind};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use secrecy::ExposeSecret;

use crate::error::SmtpError;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// Every template, by file name, with its built-in source.
const BUILTIN: &[(&str, &str)] = builtin![
    "layout.txt",
    "layout.html",
    "action.html",
    "verify_email.subject.txt",
    "verify_email.txt",
    "verify_email.html",
    "change_email.subject.txt",
    "change_email.txt",
    "change_email.html",
    "reset_password.subject.txt",
    "reset_password.txt",
    "reset_password.html",
    "registration_attempt.subject.txt",
    "registration_attempt.txt",
    "registration_attempt.html",
    "password_changed.subject.txt",
    "password_changed.txt",
    "password_changed.html",
    "email_changed.subject.txt",
    "email_changed.txt",
    "email_changed.html",
    "email_change_requested.subject.txt",
    "email_change_requested.txt",
    "email_change_requested.html",
    "account_locked.subject.txt",
    "account_locked.txt",
    "account_locked.html",
    "account_deleted.subject.txt",
    "account_deleted.txt",
    "account_deleted.html",
    "totp_enabled.subject.txt",
    "totp_enabled.txt",
    "totp_enabled.html",
    "totp_disabled.subject.txt",
    "totp_disabled.txt",
    "totp_disabled.html",
    "passkey_added.subject.txt",
    "passkey_added.txt",
    "passkey_added.html",
    "passkey_removed.subject.txt",
    "passkey_removed.txt",
    "passkey_removed.html",
    "recovery_code_used.subject.txt",
    "recovery_code_used.txt",
    "recovery_code_used.html",
];

/// The file names of every template, the ones a templates directory may override.
pub fn template_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}

/// A mail's rendered parts.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// One line, without control characters.
    pub subject: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
}

/// Holds a link: not shown.
impl std::fmt::Debug for RenderedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedMail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The compiled templates.
///
/// For each kind (its [`MailKind::as_str`] name, like `verify_email`) there are three:
/// `<kind>.subject.txt` (the subject, made one line), `<kind>.txt` (the text/plain part)
/// and `<kind>.html` (the text/html part). The bodies extend `layout.txt` and
/// `layout.html` (greeting and footer); the HTML ones import the link button macro from
/// `action.html`. [`template_names`] lists them all.
///
/// Variables:
/// - `name`: the recipient's first name, or none (`{% if name %}`);
/// - `link`: the action link, or none;
/// - `product`: [`crate::SmtpConfig::product_name`];
/// - `kind`: the kind's name;
/// - `subject`: the rendered subject (bodies only).
///
/// HTML templates escape every value. Syntax: minijinja (Jinja2), with `trim_blocks` and
/// `lstrip_blocks`; printing an unknown variable is an error.
#[derive(Debug)]
pub struct MailTemplates {
    env: Environment<'static>,
    product: String,
}

impl MailTemplates {
    /// The built-in templates, each replaced by the file of the same name in `dir` if
    /// there is one. Every template is parsed and rendered once with sample values, so a
    /// broken one fails here rather than when a mail is sent. Unknown files in `dir` are
    /// reported in the log and ignored.
    pub fn load(dir: Option<&Path>, product: &str) -> Result<Self, SmtpError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|source| SmtpError::Template {
                name: "(syntax)".to_owned(),
                source,
            })?;
        env.set_syntax(syntax);
        // A misspelt variable fails the check at load time instead of printing nothing;
        // `{% if name %}` on a missing value still works.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(html_formatter);

        if let Some(dir) = dir {
            warn_unknown_files(dir)?;
        }
        for (name, builtin) in BUILTIN {
            let source = match dir {
                Some(dir) => read_override(dir, name)?.unwrap_or_else(|| (*builtin).to_owned()),
                None => (*builtin).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|source| SmtpError::Template {
                    name: (*name).to_owned(),
                    source,
                })?;
        }

        let templates = Self {
            env,
            product: product.to_owned(),
        };
        templates.check()?;
        Ok(templates)
    }

    /// Renders `mail`.
    pub fn render(&self, mail: &Mail) -> Result<RenderedMail, SmtpError> {
        self.render_parts(
            mail.kind,
            mail.name.as_deref(),
            mail.link.as_ref().map(|l| l.expose_secret()),
        )
        .map_err(|(name, err)| SmtpError::Render {
            name,
            kind: err.kind(),
            line: err.line(),
        })
    }

    fn render_parts(
        &self,
        kind: MailKind,
        name: Option<&str>,
        link: Option<&str>,
    ) -> Result<RenderedMail, (String, minijinja::Error)> {
        let base = minijinja::context! {
            name => name.map(one_line).filter(|n| !n.is_empty()),
            link => link,
            product => self.product.as_str(),
            kind => kind.as_str(),
        };
        let render = |file: String, ctx: Value| {
            self.env
                .get_template(&file)
                .and_then(|t| t.render(ctx))
                .map_err(|err| (file, err))
        };
        let subject = render(format!("{}.subject.txt", kind.as_str()), base.clone())?;
        let subject = one_line(&subject);
        let ctx = minijinja::context! { subject => subject.as_str(), ..base };
        let text = render(format!("{}.txt", kind.as_str()), ctx.clone())?;
        let html = render(format!("{}.html", kind.as_str()), ctx)?;
        Ok(RenderedMail {
            subject,
            text: normalize_text(&text),
            html,
        })
    }

    /// Renders every kind with and without name and link.
    fn check(&self) -> Result<(), SmtpError> {
        for kind in MailKind::ALL {
            for (name, link) in [
                (Some("Ada"), Some("https://example.com/action?token=sample")),
                (None, None),
            ] {
                self.render_parts(kind, name, link)
                    .map_err(|(name, source)| SmtpError::Template { name, source })?;
            }
        }
        Ok(())
    }
}

/// In HTML, escapes strings for text and quoted attributes only (`&<>"'`), leaving `/`
/// alone so links read as written; everything else as minijinja does.
fn html_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if matches!(state.auto_escape(), AutoEscape::Html)
        && !value.is_safe()
        && let Some(s) = value.as_str()
    {
        for c in s.chars() {
            let done = match c {
                '&' => out.write_str("&amp;"),
                '<' => out.write_str("&lt;"),
                '>' => out.write_str("&gt;"),
                '"' => out.write_str("&quot;"),
                '\'' => out.write_str("&#39;"),
                c => out.write_char(c),
            };
            done.map_err(minijinja::Error::from)?;
        }
        return Ok(());
    }
    minijinja::escape_formatter(out, state, value)
}

/// A subject or a name as one line: whitespace runs (newlines included) become one
/// space, other control characters go.
pub(crate) fn one_line(raw: &str) -> String {
    raw.split_whitespace()
        .map(|word| word.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Trims trailing spaces of lines (except the signature separator `-- `), collapses
/// runs of blank lines, and ends with one newline.
fn normalize_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank_run = 0;
    for line in raw.trim_matches('\n').lines() {
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn read_override(dir: &Path, name: &str) -> Result<Option<String>, SmtpError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(source) => Ok(Some(source)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SmtpError::TemplateFile { path, source }),
    }
}

fn warn_unknown_files(dir: &Path) -> Result<(), SmtpError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SmtpError::TemplateFile {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if !template_names().any(|name| name == file) {
            tracing::warn!(
                file = %file,
                dir = %dir.display(),
                "ignoring a file that names no mail template"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_subject_a_text_and_an_html_template() {
        for kind in MailKind::ALL {
            for suffix in [".subject.txt", ".txt", ".html"] {
                let file = format!("{}{suffix}", kind.as_str());
                assert!(template_names().any(|n| n == file), "{file} is missing");
            }
        }
    }

    #[test]
    fn built_in_subjects_are_the_domains_subjects() {
        let templates = MailTemplates::load(None, "Auth").unwrap();
        for kind in MailKind::ALL {
            let rendered = templates.render_parts(kind, None, None).unwrap();
            assert_eq!(rendered.subject, kind.subject(), "{kind:?}");
        }
    }

    #[test]
    fn a_subject_is_one_line() {
        assert_eq!(one_line("  Hello\r\n  there\u{7}\t!\n"), "Hello there !");
    }

    #[test]
    fn text_keeps_one_blank_line_between_paragraphs() {
        assert_eq!(
            normalize_text("\n\na  \n\n\n\nb\n-- \nc\n\n"),
            "a\n\nb\n-- \nc\n"
        );
    }
}
