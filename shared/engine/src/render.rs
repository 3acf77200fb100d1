//! Alert text: an email subject and body, a Slack Block Kit message, and an
//! AWS Chatbot custom notification, from a finding and its rule's response
//! guide; and text bound for a terminal ([`escape`]).
//!
//! Attacker-controlled text (user agent, principal names, anything from the
//! request) is truncated, stripped of control characters, and for Slack
//! escaped (`&`, `<`, `>`), so it can never mention a channel, inject a link
//! or break the layout.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::finding::Finding;

/// Longest piece of attacker-controlled text shown.
pub const MAX_FIELD: usize = 256;

/// Control characters removed, whitespace runs folded, cut at `max` chars.
pub fn clean(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if count == max {
            out.push('…');
            break;
        }
        out.push(c);
        count += 1;
    }
    out.trim().to_owned()
}

/// Whether a character is shown escaped on a terminal: C0 and C1 controls
/// and DEL, the bidirectional embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069), the directional marks (U+200E, U+200F,
/// U+061C), and the line and paragraph separators (U+2028, U+2029).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `s` with every [`is_unsafe`] character written as a visible Rust-style
/// escape (`\u{1b}`, `\u{202e}`; tab, newline and carriage return as `\t`,
/// `\n`, `\r`). Borrowed when there is nothing to escape.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Append `c` to `out`, escaped if it is [`is_unsafe`].
pub fn push_escaped(out: &mut String, c: char) {
    if !is_unsafe(c) {
        out.push(c);
        return;
    }
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// Text made safe for Slack mrkdwn: cleaned, then `&`, `<`, `>` escaped and
/// the characters that start formatting neutralised.
pub fn slack_escape(text: &str, max: usize) -> String {
    let cleaned = clean(text, max);
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Stop *bold*, _italic_, ~strike~ and `code` spans opened by the attacker.
            '*' | '_' | '~' | '`' => {
                out.push(c);
                out.push('\u{200B}');
            }
            _ => out.push(c),
        }
    }
    out
}

/// Text made safe for an AWS Chatbot custom notification, whose
/// `client-markdown` text the chat client renders (Slack mrkdwn, Teams
/// markdown): [`slack_escape`], and `]` kept from closing a markdown link
/// (`[text](url)`).
pub fn chatbot_escape(text: &str, max: usize) -> String {
    slack_escape(text, max).replace(']', "]\u{200B}")
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// The email subject: level, title and account, as SNS accepts a subject:
/// ASCII only, no line breaks or control characters, fewer than 100
/// characters (Amazon SNS API reference, `Publish`, `Subject`). The title
/// is cut with `...` to fit; non-ASCII characters become `?`; the account
/// (a 12-digit id in CloudTrail, but any text in a crafted record) is cut
/// at 20 characters.
pub fn subject(f: &Finding) -> String {
    const MAX: usize = 99;
    let account = ascii(&clean(opt(&f.account), 20));
    let prefix = format!("[trailwarden {}] ", f.level.as_str().to_uppercase());
    let suffix = format!(" ({account})");
    let room = MAX.saturating_sub(prefix.len() + suffix.len());
    let mut title = ascii(&clean(&f.rule_title, MAX_FIELD));
    if title.len() > room {
        title.truncate(room.saturating_sub(3));
        title.push_str("...");
    }
    format!("{prefix}{title}{suffix}")
}

/// `text` in printable ASCII: `…` as `...`, any other non-ASCII character
/// as `?` (one byte per character, so byte lengths are lengths).
fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '…' => out.push_str("..."),
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// A message attribute value as SNS accepts it: not empty (`-` stands for
/// nothing), no control characters, at most [`MAX_FIELD`] characters.
pub fn attribute(value: Option<&str>) -> String {
    let value = clean(value.unwrap_or(""), MAX_FIELD);
    if value.is_empty() {
        "-".to_owned()
    } else {
        value
    }
}

/// The plain-text body: what happened, who, where, when, why it matters,
/// what to do, and the event ids.
pub fn email_body(f: &Finding, response: Option<&str>) -> String {
    let mut b = String::new();
    let line = |b: &mut String, k: &str, v: &str| {
        b.push_str(&format!("{k:<14}{}\n", clean(v, MAX_FIELD)));
    };
    b.push_str(&format!(
        "{} ({}): {}\n\n",
        clean(&f.rule_title, 200),
        f.level,
        clean(&format!("{}:{}", f.event_source, f.event_name), 200)
    ));
    b.push_str("WHAT HAPPENED\n");
    line(
        &mut b,
        "Event",
        &format!("{} {}", f.event_source, f.event_name),
    );
    if let Some(note) = &f.note {
        line(&mut b, "Detail", note);
    }
    if f.count > 1 {
        line(&mut b, "Events", &f.count.to_string());
    }
    if let Some(code) = &f.error_code {
        line(&mut b, "Error", code);
    }
    b.push_str("\nWHO\n");
    line(&mut b, "Principal", opt(&f.principal));
    line(&mut b, "Type", opt(&f.principal_type));
    line(&mut b, "Access key", opt(&f.access_key_id));
    line(&mut b, "Source IP", opt(&f.source_ip));
    line(&mut b, "User agent", opt(&f.user_agent));
    b.push_str("\nWHERE AND WHEN\n");
    line(&mut b, "Account", opt(&f.account));
    line(&mut b, "Region", opt(&f.region));
    line(&mut b, "Time", &f.event_time);
    for (k, v) in &f.group {
        line(&mut b, "Group", &format!("{k} = {v}"));
    }
    b.push_str("\nWHY IT MATTERS\n");
    b.push_str(&clean(&f.description, 2000));
    b.push_str("\n\nWHAT TO DO\n");
    b.push_str(&clean(
        response.unwrap_or("Review the events below with the principal's owner."),
        3000,
    ));
    b.push_str("\n\nEVENTS\n");
    for id in &f.event_ids {
        b.push_str(&format!("  {}\n", clean(id, 100)));
    }
    b.push_str(&format!(
        "\nFinding {} · rule {}\nQuery it: trailwarden findings show {}\n",
        f.id, f.rule_id, f.id
    ));
    b
}

/// A Slack Block Kit message (for an incoming webhook).
pub fn slack_message(f: &Finding, response: Option<&str>) -> Value {
    let s = |v: &str| slack_escape(v, MAX_FIELD);
    let fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Principal*\n{}", s(opt(&f.principal)))}),
        json!({"type": "mrkdwn", "text": format!("*Account / region*\n{} / {}", s(opt(&f.account)), s(opt(&f.region)))}),
        json!({"type": "mrkdwn", "text": format!("*Source IP*\n{}", s(opt(&f.source_ip)))}),
        json!({"type": "mrkdwn", "text": format!("*Access key*\n{}", s(opt(&f.access_key_id)))}),
        json!({"type": "mrkdwn", "text": format!("*Event*\n{}:{}", s(&f.event_source), s(&f.event_name))}),
        json!({"type": "mrkdwn", "text": format!("*Time*\n{}", s(&f.event_time))}),
    ];
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clean(&format!("{} · {}", f.level.as_str().to_uppercase(), f.rule_title), 150)}}),
        json!({"type": "section", "fields": fields}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*User agent*\n{}", s(opt(&f.user_agent)))}}),
    ];
    if let Some(note) = &f.note {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": s(note)}]}));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*What to do*\n{}", slack_escape(response.unwrap_or("Review the events with the principal's owner."), 2500))}}));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("finding {} · {} event(s): {}", s(&f.id), f.count, s(&f.event_ids.join(", ")))}]}));
    json!({
        "text": slack_escape(&subject(f), 150),
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

/// An AWS Chatbot custom notification.
pub fn chatbot_message(f: &Finding) -> Value {
    json!({
        "version": "1.0",
        "source": "custom",
        "id": f.id,
        "content": {
            "textType": "client-markdown",
            "title": chatbot_escape(&subject(f), 150),
            "description": format!(
                "{} by {} from {} ({}:{})",
                chatbot_escape(&f.rule_title, 200),
                chatbot_escape(opt(&f.principal), MAX_FIELD),
                chatbot_escape(opt(&f.source_ip), 64),
                chatbot_escape(&f.event_source, 64),
                chatbot_escape(&f.event_name, 64),
            ),
            "nextSteps": [format!("trailwarden findings show {}", f.id)],
        },
        "metadata": {
            "threadId": f.rule_id,
            "summary": chatbot_escape(&f.rule_title, 200),
            "eventType": "trailwarden finding",
            "relatedResources": f.event_ids,
            "additionalContext": {"level": f.level.as_str(), "account": opt(&f.account)},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Level;

    fn hostile() -> Finding {
        serde_json::from_value(json!({
            "id": "tw-1", "rule_id": "r", "rule_title": "Bedrock Guardrail Deleted", "level": "high",
            "tags": [], "description": "A guardrail was deleted.", "event_time": "2026-11-02T08:00:00Z",
            "account": "111122223333", "region": "us-east-1",
            "principal": "arn:aws:iam::111122223333:user/<!channel>",
            "principal_type": "IAMUser", "access_key_id": "AKIA1", "source_ip": "192.0.2.1",
            "user_agent": "curl <https://evil.example|click here> <!here> *bold* `x`\u{1b}[31m\nline",
            "event_source": "bedrock.amazonaws.com", "event_name": "DeleteGuardrail", "error_code": null,
            "event_ids": ["e1"], "count": 1
        }))
        .unwrap()
    }

    #[test]
    fn slack_text_cannot_mention_or_link() {
        let msg = slack_message(&hostile(), Some("Restore it <!everyone>."));
        let text = msg.to_string();
        assert!(
            !text.contains("<!channel>")
                && !text.contains("<!here>")
                && !text.contains("<!everyone>")
        );
        assert!(!text.contains("<https://"));
        assert!(text.contains("&lt;https://evil.example|click here&gt;"));
        assert!(!text.contains('\u{1b}'));
        assert_eq!(msg["unfurl_links"], false);
    }

    /// The Chatbot message's rendered text (title, description, summary)
    /// cannot mention, link or format, whatever the record held.
    #[test]
    fn chatbot_text_cannot_mention_or_link() {
        let mut f = hostile();
        f.account = Some("<!channel>".into());
        f.source_ip = Some("[reset your password](https://evil.example)".into());
        f.event_name = "Invoke*Model*".into();
        let msg = chatbot_message(&f);
        for field in [
            &msg["content"]["title"],
            &msg["content"]["description"],
            &msg["metadata"]["summary"],
        ] {
            let text = field.as_str().unwrap();
            assert!(!text.contains("<!"), "{text}");
            assert!(!text.contains("<https://"), "{text}");
            assert!(!text.contains("]("), "{text}");
            assert!(!text.contains("*Model*"), "{text}");
            assert!(!text.contains('\u{1b}') && !text.contains('\n'), "{text}");
        }
        let description = msg["content"]["description"].as_str().unwrap();
        assert!(description.contains("&lt;!channel&gt;"), "{description}");
        assert!(description.contains("evil.example"), "{description}");
    }

    #[test]
    fn subject_is_short_and_says_level_title_account() {
        let mut f = hostile();
        f.rule_title = "x".repeat(300);
        let s = subject(&f);
        assert!(s.chars().count() < 100, "{s}");
        assert!(s.starts_with("[trailwarden HIGH] ") && s.ends_with(" (111122223333)"));
        assert_eq!(f.level, Level::High);
    }

    /// What SNS accepts as a subject, whatever the title and account hold:
    /// printable ASCII, fewer than 100 characters.
    #[test]
    fn every_subject_is_one_sns_accepts() {
        let mut f = hostile();
        for (title, account) in [
            ("x".repeat(300), Some("111122223333".to_owned())),
            (
                "Modèle « non approuvé » invoqué …".to_owned(),
                Some("1".repeat(5000)),
            ),
            ("a\nb\r\u{1b}[31m\u{202e}c".to_owned(), Some(String::new())),
            (String::new(), None),
            ("é".repeat(200), Some("é".repeat(200))),
        ] {
            f.rule_title = title;
            f.account = account;
            let s = subject(&f);
            assert!(s.len() < 100, "{} chars: {s}", s.len());
            assert!(s.bytes().all(|b| (b' '..=b'~').contains(&b)), "{s:?}");
            assert!(s.starts_with("[trailwarden HIGH] "), "{s}");
        }
    }

    #[test]
    fn attributes_are_never_empty_or_long() {
        assert_eq!(attribute(Some("")), "-");
        assert_eq!(attribute(None), "-");
        assert_eq!(attribute(Some(" \u{0} ")), "-");
        assert_eq!(attribute(Some("111122223333")), "111122223333");
        assert!(attribute(Some(&"7".repeat(5000))).chars().count() <= MAX_FIELD + 1);
    }

    #[test]
    fn body_has_every_section() {
        let body = email_body(&hostile(), Some("Recreate the guardrail."));
        for part in [
            "WHAT HAPPENED",
            "WHO",
            "WHERE AND WHEN",
            "WHY IT MATTERS",
            "WHAT TO DO",
            "EVENTS",
            "Recreate the guardrail.",
            "e1",
            "AKIA1",
            "192.0.2.1",
        ] {
            assert!(body.contains(part), "{part} missing in {body}");
        }
        assert!(!body.contains('\u{1b}'));
        let long = clean(&"a".repeat(1000), 10);
        assert_eq!(long.chars().count(), 11);
    }
}
