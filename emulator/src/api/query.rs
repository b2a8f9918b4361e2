//! The awsQuery protocol shared by STS and IAM: form-encoded POST bodies in, XML out, and the
//! `<ErrorResponse>` shape of their errors.

use std::borrow::Cow;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// What IAM leaves unencoded in the policy documents it returns (RFC 3986 unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The value of form field `key` (`+` is a space, as in any form).
pub(crate) fn form_value<'a>(body: &'a str, key: &str) -> Option<Cow<'a, str>> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| match v.contains('+') {
            true => Cow::Owned(percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned()),
            false => percent_decode_str(v).decode_utf8_lossy(),
        })
    })
}

/// `text` escaped for an XML element.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` percent-encoded as IAM returns policy documents.
pub(crate) fn url_encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

/// `<{action}Response><{action}Result>{result}</…Result><ResponseMetadata>…</…Response>`;
/// `result` is already XML.
pub(crate) fn success(xmlns: &str, action: &str, result: &str) -> Response {
    let xml = format!(
        "<{action}Response xmlns=\"{xmlns}\">\n  <{action}Result>\n{result}  </{action}Result>\n  <ResponseMetadata>\n    \
         <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        uuid::Uuid::new_v4()
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}

/// The awsQuery error answer: `<ErrorResponse><Error><Type>Sender</Type><Code>…`.
pub(crate) fn error(xmlns: &str, status: StatusCode, code: &str, message: &str) -> Response {
    let xml = format!(
        "<ErrorResponse xmlns=\"{xmlns}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    \
         <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        xml_escape(message),
        uuid::Uuid::new_v4()
    );
    (status, [(header::CONTENT_TYPE, "text/xml")], xml).into_response()
}

/// One `<name>value</name>` line (value escaped), indented for a Result body.
pub(crate) fn element(name: &str, value: &str) -> String {
    format!("      <{name}>{}</{name}>\n", xml_escape(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_escapes() {
        assert_eq!(form_value("Action=GetCallerIdentity&Version=2011-06-15", "Action").as_deref(), Some("GetCallerIdentity"));
        assert_eq!(form_value("Version=2011-06-15&Action=A%42", "Action").as_deref(), Some("AB"));
        assert_eq!(form_value("Version=2011-06-15", "Action"), None);
        assert_eq!(form_value("D=a+b%2Bc", "D").as_deref(), Some("a b+c"));
        assert_eq!(xml_escape("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
        assert_eq!(url_encode(r#"{"Version": "2012-10-17"}"#), "%7B%22Version%22%3A%20%222012-10-17%22%7D");
    }
}
