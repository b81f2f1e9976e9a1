//! The recorded eStreamer stream shipped in the packages
//! (`/usr/share/estreamer-cef/examples/sample.estreamer`): what an FMC sends after the handshake
//! for one event of every type, more of the everyday ones (connections, intrusions, files,
//! malware), and the metadata that names them. `estreamer-cef decode --cef` and
//! `estreamer-cef replay` read it; `packaging/build.sh` writes it with `estreamer-cef-sim sample`.
//!
//! It follows from the options below alone, so every build ships the same bytes.

use crate::generate::{GenOptions, Generated, Profile, generate, to_stream};

/// Events per type beyond one: roughly a real FMC's mix, where connections and intrusions are
/// most of the traffic.
const EVERYDAY: &[(u32, usize)] = &[
    (71, 25),  // connection
    (400, 15), // intrusion (IPS event)
    (500, 6),  // file
    (502, 4),  // malware
    (2, 2),    // intrusion packet
];

/// The generator options of the sample: every record type, plausible values only (an FMC's
/// plain text, every id named by a metadata record).
pub fn options() -> GenOptions {
    GenOptions {
        seed: 2026,
        events_per_type: 1,
        events_of: EVERYDAY.to_vec(),
        unknown_id_rate: 0.0,
        profile: Profile::Realistic,
        ..GenOptions::default()
    }
}

/// The sample's records and what the decoder must make of them.
pub fn generated() -> Generated {
    generate(&options())
}

/// Records per MessageBundle, as an FMC bundles them.
const BUNDLE_SIZE: usize = 50;

/// The sample's bytes: metadata first, then the events in archive order, in MessageBundles.
pub fn stream() -> Vec<u8> {
    let records: Vec<_> = generated().records().cloned().collect();
    to_stream(&records, BUNDLE_SIZE, 1)
}
