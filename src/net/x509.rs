//! How certificates and OpenSSL errors are shown to the user: names, the names a certificate is
//! valid for, and an error stack as one line. Used by the identity (PKCS12/PEM) loader and the TLS
//! setup alike, so it sits below both.

use std::net::IpAddr;

use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::x509::{X509NameRef, X509Ref};

/// Formats a certificate name as `CN=..., O=...`.
pub fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_else(|_| "?".to_string());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first Common Name in a certificate name.
pub fn common_name(name: &X509NameRef) -> Option<String> {
    name.entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|entry| entry.data().to_string().ok())
}

/// The names a certificate is valid for: its DNS and IP subject alternative names, or its CN when
/// it has none (as hostname checking falls back to the CN).
pub fn cert_names(cert: &X509Ref) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for san in &sans {
            if let Some(dns) = san.dnsname() {
                names.push(dns.to_string());
            } else if let Some(ip) = san.ipaddress().and_then(ip_from_bytes) {
                names.push(ip.to_string());
            }
        }
    }
    if names.is_empty() {
        names.extend(common_name(cert.subject_name()));
    }
    names
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// An OpenSSL error stack as one line of its reason strings, without file/line noise.
pub fn one_line(stack: &ErrorStack) -> String {
    let mut reasons: Vec<String> = Vec::new();
    for e in stack.errors() {
        // Entries without a reason string only repeat a code the user cannot act on.
        let Some(reason) = e.reason() else { continue };
        let text = match e.data() {
            Some(data) if !data.is_empty() => format!("{reason}: {data}"),
            _ => reason.to_string(),
        };
        if !reasons.contains(&text) {
            reasons.push(text);
        }
    }
    if reasons.is_empty() {
        match stack.errors().first() {
            Some(e) => format!("OpenSSL error code {:#x}", e.code()),
            None => "unknown OpenSSL error".to_string(),
        }
    } else {
        reasons.join("; ")
    }
}
