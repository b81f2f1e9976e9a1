//! The application payload of a captured frame (`l7(x)` in a mapping table): what follows the
//! Ethernet, IPv4/IPv6 and TCP/UDP headers. Intrusion packets (record 2) carry whole frames;
//! content built on eNcore reads only the payload (an HTTP request, an SSH banner).

/// The bytes after the link, network and transport headers of an Ethernet frame, read from the
/// headers' own lengths (IPv4 options, TCP options, VLAN tags). A frame that is not Ethernet with
/// IPv4 or IPv6 and TCP or UDP, or is cut short inside its headers, is returned whole: the
/// payload cannot be told from the headers then, and nothing is lost.
pub fn l7_payload(frame: &[u8]) -> &[u8] {
    payload_offset(frame).map_or(frame, |at| &frame[at..])
}

fn payload_offset(f: &[u8]) -> Option<usize> {
    const IPV4: u16 = 0x0800;
    const IPV6: u16 = 0x86dd;
    const VLAN: [u16; 2] = [0x8100, 0x88a8];
    let u16_at = |i: usize| Some(u16::from_be_bytes([*f.get(i)?, *f.get(i + 1)?]));
    let mut at = 12;
    let mut ether_type = u16_at(at)?;
    while VLAN.contains(&ether_type) {
        at += 4;
        ether_type = u16_at(at)?;
    }
    at += 2;
    let protocol = match ether_type {
        IPV4 => {
            let ihl = usize::from(f.get(at)? & 0x0f) * 4;
            let protocol = *f.get(at + 9)?;
            if ihl < 20 {
                return None;
            }
            at += ihl;
            protocol
        }
        IPV6 => {
            let next = *f.get(at + 6)?;
            at += 40;
            next
        }
        _ => return None,
    };
    at += match protocol {
        6 => usize::from(f.get(at + 12)? >> 4) * 4,
        17 => 8,
        _ => return None,
    };
    (at <= f.len()).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ethernet(ether_type: [u8; 2], rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ether_type);
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn ipv4_tcp_with_options_gives_the_payload() {
        // IPv4 with one option word (IHL 6), TCP with data offset 8 (12 bytes of options).
        let mut ip = vec![0x46, 0, 0, 0, 0, 0, 0, 0, 64, 6];
        ip.resize(24, 0);
        let mut tcp = vec![0u8; 32];
        tcp[12] = 8 << 4;
        let f = ethernet(
            [0x08, 0x00],
            &[ip, tcp, b"GET / HTTP/1.1\r\n".to_vec()].concat(),
        );
        assert_eq!(l7_payload(&f), b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn ipv6_udp_behind_a_vlan_tag_gives_the_payload() {
        let mut ip = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        ip.resize(40, 0);
        let mut tagged = vec![0, 5, 0x86, 0xdd];
        tagged.extend_from_slice(&ip);
        tagged.extend_from_slice(&[0u8; 8]);
        tagged.extend_from_slice(b"SSH-2.0-x");
        let f = ethernet([0x81, 0x00], &tagged);
        assert_eq!(l7_payload(&f), b"SSH-2.0-x");
    }

    #[test]
    fn frames_it_cannot_read_are_returned_whole() {
        let arp = ethernet([0x08, 0x06], &[1, 2, 3]);
        assert_eq!(l7_payload(&arp), &arp[..]);
        let cut = ethernet([0x08, 0x00], &[0x45, 0, 0]);
        assert_eq!(l7_payload(&cut), &cut[..]);
        let icmp = ethernet([0x08, 0x00], &[0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1]);
        assert_eq!(l7_payload(&icmp), &icmp[..]);
        assert_eq!(l7_payload(&[]), &[] as &[u8]);
    }
}
