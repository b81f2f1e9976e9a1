//! This machine's name for the syslog HOSTNAME field: the FQDN when the resolver knows one
//! (RFC 5424 prefers it), else the plain host name.

use std::ffi::{CStr, CString};

/// The FQDN of this machine if known, else its host name, else `-` (the NILVALUE).
/// May consult the resolver once; call it at startup, not per event.
pub fn local_hostname() -> String {
    let Some(short) = gethostname() else {
        return "-".to_string();
    };
    if short.contains('.') {
        return short;
    }
    canonical_name(&short)
        .filter(|c| c.contains('.'))
        .unwrap_or(short)
}

fn gethostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (the last byte stays 0 if the name is truncated).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let name = CStr::from_bytes_until_nul(&buf)
        .ok()?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    (!name.is_empty()).then_some(name)
}

fn canonical_name(host: &str) -> Option<String> {
    let c_host = CString::new(host).ok()?;
    // SAFETY: zeroed addrinfo is a valid "no hints" value; we set flags only.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and out-pointer; the result is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a valid list from getaddrinfo; ai_canonname is NUL-terminated or null.
    let name = unsafe {
        let first = &*res;
        let n = if first.ai_canonname.is_null() {
            None
        } else {
            CStr::from_ptr(first.ai_canonname)
                .to_str()
                .ok()
                .map(str::to_string)
        };
        libc::freeaddrinfo(res);
        n
    };
    name.filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_hostname_is_a_valid_header_value() {
        let h = super::local_hostname();
        assert!(!h.is_empty());
        assert!(h.chars().all(|c| c.is_ascii_graphic()), "{h:?}");
        let short = super::gethostname().unwrap();
        assert!(
            h.starts_with(short.split('.').next().unwrap()),
            "{h} vs {short}"
        );
    }
}
