//! The CSV cell guard against formula injection (issue 11, item 10): the one helper lives in
//! `nguon_provision::spreadsheet` (the provisioning tool writes CSV too) and is re-exported here
//! for the server's CSV writers (reports, demo credentials).

pub use nguon_provision::spreadsheet::cell;
