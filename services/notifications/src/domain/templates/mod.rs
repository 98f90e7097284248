//! Message templates: files per template × channel × locale (`templates/<locale>/<name>.<channel>.txt`,
//! embedded at build time), parsed and checked against the [`catalog`] once at start-up — a
//! missing file, an unknown file, a syntax error or an undeclared variable fails start-up — then
//! rendered with typed [`Value`]s in the recipient's language and the clinic's time zone.
//!
//! Syntax: `{{variable}}` inserts a variable; everything else is literal. An email file starts
//! with a `Subject: …` line and a blank line; the rest is the body.

pub mod catalog;

use super::format::{self, Decision};
use catalog::{LOCALES, TemplateId, VarType, channel_suffix, locale_dir};
use clinicnet_proto::{common::v1::Locale, notifications::v1::Channel};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use std::collections::HashMap;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// A value for a template variable.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Plain text.
    Text(String),
    /// An instant.
    Instant(Timestamp),
    /// A calendar date.
    Date(Date),
    /// Minor units and an ISO currency code.
    Money(i64, String),
    /// A payer's decision.
    Decision(Decision),
}

impl Value {
    fn var_type(&self) -> VarType {
        match self {
            Value::Text(_) => VarType::Text,
            Value::Instant(_) => VarType::Instant,
            Value::Date(_) => VarType::Date,
            Value::Money(..) => VarType::Money,
            Value::Decision(_) => VarType::Decision,
        }
    }

    fn show(&self, zone: &TimeZone, locale: Locale) -> String {
        match self {
            Value::Text(text) => text.clone(),
            Value::Instant(at) => format::instant(*at, zone, locale),
            Value::Date(date) => format::date(*date, locale),
            Value::Money(cents, currency) => format::money(*cents, currency, locale),
            Value::Decision(decision) => format::decision(*decision, locale).to_owned(),
        }
    }
}

/// The variables of one message.
pub type Values = HashMap<&'static str, Value>;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Variable(String),
}

#[derive(Debug, Clone)]
struct Template {
    subject: Option<Vec<Piece>>,
    body: Vec<Piece>,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Email subject; `None` for SMS.
    pub subject: Option<String>,
    /// Body text.
    pub body: String,
}

/// Why rendering failed: a bug in the caller (the set itself was checked at start-up).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// No template for the combination.
    #[error("no template {0} for this channel and locale")]
    Missing(&'static str),
    /// A variable has no value.
    #[error("template {template}: no value for {{{{{variable}}}}}")]
    NoValue {
        /// Template.
        template: &'static str,
        /// Variable.
        variable: String,
    },
    /// A value has the wrong type.
    #[error("template {template}: {{{{{variable}}}}} has the wrong type")]
    WrongType {
        /// Template.
        template: &'static str,
        /// Variable.
        variable: String,
    },
}

/// Every template, checked.
#[derive(Debug, Clone)]
pub struct TemplateSet {
    templates: HashMap<(TemplateId, Channel, Locale), Template>,
}

impl TemplateSet {
    /// The templates embedded in the binary, checked.
    pub fn embedded() -> Result<TemplateSet, TemplateErrors> {
        TemplateSet::load(embedded::FILES)
    }

    /// Parses and checks `files` (`(path under templates/, contents)`): every template of the
    /// catalogue on each of its channels in every locale, no other file, every variable declared.
    pub fn load(files: &[(&str, &str)]) -> Result<TemplateSet, TemplateErrors> {
        let mut problems = Vec::new();
        let mut templates = HashMap::new();
        for (path, text) in files {
            match parse_file(path, text) {
                Ok((key, template)) => {
                    templates.insert(key, template);
                }
                Err(problem) => problems.push(problem),
            }
        }
        for id in TemplateId::ALL {
            for channel in id.channels() {
                for locale in LOCALES {
                    let path = format!(
                        "{}/{}.{}.txt",
                        locale_dir(locale),
                        id.name(),
                        channel_suffix(*channel)
                    );
                    // A file that is there but broken was reported above.
                    if !files.iter().any(|(p, _)| *p == path) {
                        problems.push(format!("{path}: missing"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(TemplateSet { templates })
        } else {
            problems.sort();
            Err(TemplateErrors(problems))
        }
    }

    /// Renders template `id` for `channel` in `locale`; instants are shown in `zone`.
    pub fn render(
        &self,
        id: TemplateId,
        channel: Channel,
        locale: Locale,
        values: &Values,
        zone: &TimeZone,
    ) -> Result<Rendered, RenderError> {
        let locale = if locale == Locale::EsUs {
            Locale::EsUs
        } else {
            Locale::EnUs
        };
        let template = self
            .templates
            .get(&(id, channel, locale))
            .ok_or(RenderError::Missing(id.name()))?;
        let fill = |pieces: &[Piece]| -> Result<String, RenderError> {
            let mut out = String::new();
            for piece in pieces {
                match piece {
                    Piece::Literal(text) => out.push_str(text),
                    Piece::Variable(name) => {
                        let value =
                            values
                                .get(name.as_str())
                                .ok_or_else(|| RenderError::NoValue {
                                    template: id.name(),
                                    variable: name.clone(),
                                })?;
                        if id.variable_type(name) != Some(value.var_type()) {
                            return Err(RenderError::WrongType {
                                template: id.name(),
                                variable: name.clone(),
                            });
                        }
                        out.push_str(&value.show(zone, locale));
                    }
                }
            }
            Ok(out)
        };
        let subject = template.subject.as_deref().map(fill).transpose()?;
        let body = fill(&template.body)?;
        Ok(Rendered {
            subject,
            body: tidy(&body),
        })
    }
}

/// Collapses the blank lines an empty variable (e.g. no instructions) leaves behind.
fn tidy(body: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in body.trim().lines() {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Everything wrong with a template set, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message templates are broken:\n{}", .0.join("\n"))]
pub struct TemplateErrors(pub Vec<String>);

fn parse_file(path: &str, text: &str) -> Result<((TemplateId, Channel, Locale), Template), String> {
    let (dir, file) = path
        .split_once('/')
        .ok_or_else(|| format!("{path}: not under a locale directory"))?;
    let locale = LOCALES
        .into_iter()
        .find(|l| locale_dir(*l) == dir)
        .ok_or_else(|| format!("{path}: unknown locale {dir:?}"))?;
    let stem = file
        .strip_suffix(".txt")
        .ok_or_else(|| format!("{path}: not a .txt file"))?;
    let (name, suffix) = stem
        .rsplit_once('.')
        .ok_or_else(|| format!("{path}: name is not <template>.<channel>.txt"))?;
    let id = TemplateId::parse(name).ok_or_else(|| format!("{path}: unknown template {name:?}"))?;
    let channel = id
        .channels()
        .iter()
        .copied()
        .find(|c| channel_suffix(*c) == suffix)
        .ok_or_else(|| format!("{path}: template {name} has no {suffix:?} channel"))?;
    let (subject, body) = if channel == Channel::Email {
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        let subject = first
            .strip_prefix("Subject: ")
            .ok_or_else(|| format!("{path}: an email template starts with \"Subject: \""))?;
        (
            Some(parse_text(path, id, subject)?),
            rest.trim_start_matches('\n'),
        )
    } else {
        (None, text.trim_end())
    };
    if body.trim().is_empty() {
        return Err(format!("{path}: empty body"));
    }
    let body = parse_text(path, id, body)?;
    Ok(((id, channel, locale), Template { subject, body }))
}

fn parse_text(path: &str, id: TemplateId, text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Literal(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| format!("{path}: unclosed {{{{"))?;
        let name = after[..close].trim();
        if id.variable_type(name).is_none() {
            return Err(format!(
                "{path}: unknown variable {{{{{name}}}}} (template {} declares: {})",
                id.name(),
                id.variables()
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        pieces.push(Piece::Variable(name.to_owned()));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err(format!("{path}: stray }}}}"));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_owned()));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests;
