//! Bad station lists: every bad row is reported with its line number and reason, all at once,
//! and nothing is written; `--skip-invalid` writes the valid rows and lists the rest.

use nguon_provision::{ProvisionError, bulk};

use crate::util::{HEADER, Workspace, differences, snapshot};

const GOOD: &str = "08003,Bản Phố,Cụm 1,loudspeaker,22.48,103.97,alsa,hmn\n";

/// Run bulk on `csv` (bytes) and return the error text; asserts that nothing was written.
fn refused(csv: &[u8]) -> String {
    let ws = Workspace::new("");
    ws.write_csv(csv);
    let err = bulk(&ws.options()).expect_err("the list is invalid");
    assert!(matches!(err, ProvisionError::InvalidRows { .. }), "{err}");
    assert!(!ws.out().exists(), "nothing written for an invalid list");
    err.to_string()
}

fn row_errors(csv: &[u8]) -> Vec<(u64, String)> {
    let ws = Workspace::new("");
    ws.write_csv(csv);
    match bulk(&ws.options()) {
        Err(ProvisionError::InvalidRows { errors, .. }) => {
            assert!(!ws.out().exists());
            errors.into_iter().map(|e| (e.line, e.reason)).collect()
        }
        other => panic!("expected invalid rows, got {other:?}"),
    }
}

#[test]
fn a_malformed_commune_code_is_reported_with_its_line() {
    let e =
        row_errors(format!("{HEADER}{GOOD}8003,Bản Phố,Cụm 2,loudspeaker,22.48,103.97,alsa,\n").as_bytes());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, 3);
    assert!(e[0].1.contains("`8003` is not a 5-digit commune code"), "{e:?}");
}

#[test]
fn a_commune_missing_from_the_communes_list_is_unknown() {
    let ws = Workspace::new(&format!(
        "{HEADER}{GOOD}08005,Tổ 1,Cụm 1,loudspeaker,22.4,104.1,alsa,\n"
    ));
    std::fs::write(
        ws.dir.path().join("communes.csv"),
        "code,name\n08003,Xã Bản Phố\n",
    )
    .unwrap();
    let mut opts = ws.options();
    opts.communes = Some(ws.dir.path().join("communes.csv"));
    let err = bulk(&opts).unwrap_err().to_string();
    assert!(
        err.contains("line 3: commune_code `08005` is not in the communes list"),
        "{err}"
    );
    assert!(!ws.out().exists());

    // With the commune removed, names come from the list.
    ws.write_csv(format!("{HEADER}{GOOD}"));
    bulk(&opts).unwrap();
    let reg = std::fs::read_to_string(ws.out().join("registry.json")).unwrap();
    assert!(reg.contains("\"Xã Bản Phố\""), "{reg}");
}

#[test]
fn the_communes_list_is_remembered_so_a_later_run_without_it_still_refuses_an_unknown_commune() {
    // Issue 16: a second run without --communes silently created area 02690 named "02690".
    let ws = Workspace::new(&format!("{HEADER}{GOOD}"));
    std::fs::write(
        ws.dir.path().join("communes.csv"),
        "code,name\n08003,Xã Bản Phố\n",
    )
    .unwrap();
    let mut first = ws.options();
    first.communes = Some(ws.dir.path().join("communes.csv"));
    bulk(&first).unwrap();
    let before = snapshot(&ws.out());

    ws.write_csv(format!(
        "{HEADER}{GOOD}02690,Thôn 1,Cụm 1,loudspeaker,22.4,104.1,alsa,\n"
    ));
    let err = bulk(&ws.options()).unwrap_err().to_string();
    assert!(
        err.contains("line 3: commune_code `02690` is not in the communes list (remembered in state.json"),
        "{err}"
    );
    assert!(
        differences(&before, &snapshot(&ws.out())).is_empty(),
        "nothing written"
    );

    // The same list without the option changes nothing (names stay those of the table).
    ws.write_csv(format!("{HEADER}{GOOD}"));
    bulk(&ws.options()).unwrap();
    assert!(differences(&before, &snapshot(&ws.out())).is_empty());
    let reg = std::fs::read_to_string(ws.out().join("registry.json")).unwrap();
    assert!(reg.contains("\"Xã Bản Phố\""), "{reg}");

    // A new table adds the commune, and is the one remembered from then on.
    std::fs::write(
        ws.dir.path().join("communes.csv"),
        "code,name\n08003,Xã Bản Phố\n02690,Xã Mới\n",
    )
    .unwrap();
    ws.write_csv(format!(
        "{HEADER}{GOOD}02690,Thôn 1,Cụm 1,loudspeaker,22.4,104.1,alsa,\n"
    ));
    bulk(&first).unwrap();
    bulk(&ws.options()).unwrap();
    let reg = std::fs::read_to_string(ws.out().join("registry.json")).unwrap();
    assert!(reg.contains("\"Xã Mới\""), "{reg}");
}

#[test]
fn a_duplicate_station_names_the_first_line() {
    let e = row_errors(format!("{HEADER}{GOOD}08003,Bản Phố,Cụm 2,board,,,null,\n{GOOD}").as_bytes());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, 4);
    assert!(
        e[0].1.contains("duplicate station `Cụm 1`") && e[0].1.contains("first on line 2"),
        "{e:?}"
    );
}

#[test]
fn coordinates_outside_vietnam_are_refused() {
    let e = row_errors(
        format!(
            "{HEADER}08003,A,1,loudspeaker,103.97,22.48,alsa,\n08003,A,2,loudspeaker,22.48,111.5,alsa,\n\
             08003,A,3,loudspeaker,abc,103.9,alsa,\n08003,A,4,loudspeaker,22.4,,alsa,\n"
        )
        .as_bytes(),
    );
    let lines: Vec<u64> = e.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 3, 4, 5]);
    assert!(
        e[0].1.contains("lat 103.97 is outside Vietnam") && e[0].1.contains("lon 22.48 is outside Vietnam"),
        "{e:?}"
    );
    assert!(e[1].1.contains("lon 111.5 is outside Vietnam"), "{e:?}");
    assert!(e[2].1.contains("lat `abc` is not a number"), "{e:?}");
    assert!(e[3].1.contains("both lat and lon"), "{e:?}");
}

#[test]
fn an_unknown_kind_is_refused() {
    let e = row_errors(format!("{HEADER}08003,A,1,siren,22.4,104.0,alsa,\n").as_bytes());
    assert_eq!(
        e,
        [(
            2,
            "kind `siren` is unknown; expected loudspeaker or board".to_string()
        )]
    );
}

#[test]
fn a_wrong_column_count_is_refused() {
    let e = row_errors(
        format!("{HEADER}{GOOD}08003,A,1,loudspeaker,22.4,104.0\n08003,A,2,board,,,null,,extra\n").as_bytes(),
    );
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].0, 3);
    assert!(e[0].1.contains("has 6 columns; expected 8"), "{e:?}");
    assert_eq!(e[1].0, 4);
    assert!(e[1].1.contains("has 9 columns"), "{e:?}");
}

#[test]
fn bytes_that_are_not_utf8_are_refused_with_the_column() {
    let mut csv = format!("{HEADER}{GOOD}").into_bytes();
    // "Bản" in Windows-1258-ish bytes.
    csv.extend_from_slice(b"08003,B\xe1n Ph\xf4,C\xf5m 2,loudspeaker,22.4,104.0,alsa,\n");
    let e = row_errors(&csv);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].0, 3);
    assert!(e[0].1.contains("`village` is not valid UTF-8"), "{e:?}");
}

#[test]
fn a_bad_audio_output_is_refused() {
    let e = row_errors(
        format!(
            "{HEADER}08003,A,1,loudspeaker,22.4,104.0,speaker,\n08003,A,2,loudspeaker,22.4,104.0,alsa:,\n"
        )
        .as_bytes(),
    );
    assert_eq!(e.len(), 2);
    assert!(
        e[0].1.contains("audio_output: `speaker` is not an audio output"),
        "{e:?}"
    );
    assert!(
        e[1].1.contains("audio_output: `alsa:` needs a device name"),
        "{e:?}"
    );
}

#[test]
fn a_wrong_header_is_refused() {
    let text =
        refused(format!("commune,village,station,kind,lat,lon,audio_output,language\n{GOOD}").as_bytes());
    assert!(text.contains("line 1: the header is `commune,village"), "{text}");
    let text = refused(b"");
    assert!(text.contains("line 1: the file is empty"), "{text}");
}

#[test]
fn every_bad_row_is_reported_at_once_in_line_order() {
    let text = refused(
        format!(
            "{HEADER}{GOOD}0800X,A,1,loudspeaker,22.4,104.0,alsa,\n08003,A,2,tv,22.4,104.0,alsa,\n\
             08003,A,3,loudspeaker,1.0,104.0,alsa,\n{GOOD}08003,A,5,board,22.4,104.0,wav:,\n"
        )
        .as_bytes(),
    );
    let lines: Vec<&str> = text.lines().skip(1).map(str::trim).collect();
    assert_eq!(lines.len(), 5, "{text}");
    for (l, n) in lines.iter().zip(3..) {
        assert!(l.starts_with(&format!("line {n}: ")), "{text}");
    }
    assert!(text.contains("5 invalid row(s), nothing written"), "{text}");
}

#[test]
fn an_invalid_list_leaves_an_existing_output_directory_unchanged() {
    let ws = Workspace::new(&format!("{HEADER}{GOOD}"));
    bulk(&ws.options()).unwrap();
    let before = snapshot(&ws.out());
    ws.write_csv(format!(
        "{HEADER}{GOOD}08003,A,1,loudspeaker,22.4,104.0,alsa,\n08003,A,2,loudspeaker,0,0,alsa,\n"
    ));
    let err = bulk(&ws.options()).unwrap_err().to_string();
    assert!(err.contains("line 4:"), "{err}");
    assert_eq!(differences(&before, &snapshot(&ws.out())), Vec::<String>::new());
}

#[test]
fn skip_invalid_writes_the_valid_rows_and_lists_the_rest() {
    let ws = Workspace::new(&format!(
        "{HEADER}{GOOD}08003,A,1,siren,22.4,104.0,alsa,\n08003,A,2,board,22.4,104.0,bogus,\n"
    ));
    let mut opts = ws.options();
    opts.skip_invalid = true;
    let r = bulk(&opts).unwrap();
    assert_eq!(r.created, ["lc-08003-0001"]);
    let lines: Vec<u64> = r.invalid.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 4]);
    assert_eq!(r.counts["unknown"].invalid, 1);
    assert_eq!(r.counts["board"].invalid, 1);
    assert!(r.table().contains("total"));
}

#[test]
fn a_station_cannot_change_kind() {
    let ws = Workspace::new(&format!("{HEADER}{GOOD}"));
    bulk(&ws.options()).unwrap();
    ws.write_csv(format!(
        "{HEADER}08003,Bản Phố,Cụm 1,board,22.48,103.97,alsa,hmn\n"
    ));
    let err = bulk(&ws.options()).unwrap_err().to_string();
    assert!(
        err.contains("line 2:") && err.contains("its kind cannot change"),
        "{err}"
    );
}
