//! Publishing an approved bulletin: per area language, speech is obtained first (the variant's
//! recorded, approved audio, or text-to-speech stored as an approved media item: it can fail) and
//! each area's loudspeaker schedule is validated; then ONE transaction writes the schedules with
//! their outbox rows (`services::schedules::create_in`), records the speech, shows the bulletin
//! on the areas' boards, stamps `published_at` and writes the `bulletin.publish` audit entry;
//! after the commit the dispatcher is woken and the boards' generation bumped. An emergency bulletin
//! plays at once (a schedule due now at emergency priority) and takes over the boards with a
//! banner. Unpublishing takes it off every board (schedules already created stay).

use nguon_protocol::Priority;

use crate::domain::bulletin::{Bulletin, PublishRequest, Published, SpeechItem, speech_text};
use crate::domain::review::ReviewStatus;
use crate::domain::schedule::{NewSchedule, RuleSpec, Targets};
use crate::error::{Error, Result};
use crate::services::bulletins::{audited, check_areas, get, json, languages_of, load_in, subject};
use crate::services::{AppState, schedules};
use crate::store::bulletins::{self as db, Speech};
use crate::store::{audit, now_ms};

/// One area's loudspeaker playlist.
struct AreaPlaylist {
    area: String,
    media: Vec<String>,
}

/// Publish an approved bulletin to the boards and loudspeakers of its areas (or `req.areas`),
/// audited as `bulletin.publish` by `actor`.
pub async fn publish(state: &AppState, actor: &str, id: &str, req: PublishRequest) -> Result<Published> {
    let b = get(&state.store, id).await?;
    if b.status != ReviewStatus::Approved {
        return Err(Error::unprocessable(
            "not_approved",
            format!("bulletin {id} is {}; approve it first", b.status),
        ));
    }
    let now = now_ms();
    if b.valid_until.is_some_and(|u| u <= now) {
        return Err(Error::unprocessable(
            "expired",
            format!("bulletin {id} is no longer valid"),
        ));
    }
    let areas = req.areas.clone().unwrap_or_else(|| b.areas.clone());
    if areas.is_empty() {
        return Err(Error::unprocessable(
            "areas_required",
            "no target areas: give `areas` or set them on the bulletin",
        ));
    }
    check_areas(&state.store, &areas).await?;
    // A voice named in the request is checked once and used everywhere; otherwise each area's
    // speech is read with the area's own voice (its own setting, an ancestor's, or the default).
    let asked_voice = match req.voice.as_deref() {
        Some(v) => Some(crate::services::speech::voice(
            state,
            Some(v),
            req.speed,
            req.pitch,
        )?),
        None => None,
    };
    let priority: Priority = b.priority.parse().unwrap_or_default();
    let speakers = req.speakers.unwrap_or(true);

    // Speech first (it can fail); boards only after everything is ready.
    let mut speech = Vec::new();
    let mut skipped = Vec::new();
    let mut playlists: Vec<AreaPlaylist> = Vec::new();
    if speakers {
        for area in &areas {
            let langs = languages_of(&state.store, area).await?.languages;
            let voice = match &asked_voice {
                Some(v) => v.clone(),
                None => crate::services::speech::area_voice(state, area, req.speed, req.pitch).await?,
            };
            let mut media = Vec::new();
            for lang in langs {
                match speech_item(state, &b, area, &lang, &voice).await? {
                    Ok(item) => {
                        media.push(item.sha256.clone());
                        speech.push(item);
                    }
                    Err(reason) => skipped.push(reason),
                }
            }
            if !media.is_empty() {
                playlists.push(AreaPlaylist {
                    area: area.clone(),
                    media,
                });
            }
        }
    }

    // Every schedule is validated before the transaction begins.
    let mut prepared = Vec::new();
    for p in &playlists {
        prepared.push(prepare_schedule(state, &b, p, &req, priority).await?);
    }
    let schedules: Vec<String> = prepared.iter().map(|s| s.schedule.id.clone()).collect();
    let mut speech_rows = Vec::new();
    for (p, schedule_id) in playlists.iter().zip(&schedules) {
        for s in speech.iter().filter(|s| s.area == p.area) {
            speech_rows.push(Speech {
                area: p.area.clone(),
                language: s.language.clone(),
                media_sha256: s.sha256.clone(),
                source: s.source.clone(),
                schedule_id: schedule_id.clone(),
            });
        }
    }

    let mut tx = state.store.begin_write().await?;
    // Publishing again replaces the schedules of the earlier publication in the same areas.
    let mut replaced = Vec::new();
    for p in &playlists {
        for old in db::speech_schedules(&mut tx, id, &p.area).await? {
            match crate::store::schedules::get_in(&mut tx, &old).await {
                Ok(s) => {
                    crate::store::schedules::delete(&mut tx, &old).await?;
                    crate::store::outbox::insert(
                        &mut tx,
                        &crate::domain::change::Change::targets(&s.targets.areas, &s.targets.devices),
                    )
                    .await?;
                    replaced.push(old);
                }
                Err(Error::NotFound(_)) => {} // deleted by hand since
                Err(e) => return Err(e),
            }
        }
    }
    let summary = serde_json::json!({"board_areas": areas, "speech": speech,
                                     "schedules": schedules, "skipped": skipped, "replaced": replaced});
    for p in &prepared {
        schedules::create_in(&mut tx, p).await?;
    }
    let new: Vec<_> = prepared.iter().map(|p| &p.schedule).collect();
    schedules::check_manifest_cap(state, &mut tx, &new).await?;
    for s in &speech_rows {
        db::replace_speech(&mut tx, id, s, now).await?;
    }
    db::publish(&mut tx, id, &areas, now).await?;
    let bulletin = load_in(&mut tx, id).await?;
    audit::record(
        &mut tx,
        actor,
        "bulletin.publish",
        &subject(id),
        json(&b),
        Some(summary),
    )
    .await?;
    tx.commit().await?;
    if !prepared.is_empty() || !replaced.is_empty() {
        state.wake.dispatch();
    }
    state.bulletins.bump();
    Ok(Published {
        bulletin,
        board_areas: areas,
        speech,
        schedules,
        skipped,
        replaced,
    })
}

/// The speech of `b` for one area and language: `Ok(Err(reason))` when the language is skipped.
async fn speech_item(
    state: &AppState,
    b: &Bulletin,
    area: &str,
    lang: &str,
    voice: &crate::domain::speech::Voice,
) -> Result<std::result::Result<SpeechItem, String>> {
    let Some(v) = b.variants.iter().find(|v| v.language == lang) else {
        return Ok(Err(format!(
            "{area}/{lang}: the bulletin has no `{lang}` variant"
        )));
    };
    if let Some(sha) = &v.audio_sha256 {
        let m = crate::store::media::get(&state.store, sha)
            .await?
            .filter(|m| m.status == ReviewStatus::Approved)
            .ok_or_else(|| {
                Error::unprocessable("media_not_approved", format!("audio {sha} is not approved"))
            })?;
        return Ok(Ok(SpeechItem {
            area: area.to_string(),
            language: lang.to_string(),
            sha256: sha.clone(),
            source: "recorded".into(),
            normalized: None,
            duration_ms: m.duration_ms,
        }));
    }
    if lang != "vi" {
        return Ok(Err(format!(
            "{area}/{lang}: no recorded audio and no text-to-speech voice for `{lang}`"
        )));
    }
    let text = speech_text(&v.title, &v.body);
    let (normalized, m) = crate::services::speech::synthesize_to_media(
        state,
        &text,
        voice,
        &format!("Bản tin: {}", v.title),
        true,
    )
    .await?;
    Ok(Ok(SpeechItem {
        area: area.to_string(),
        language: lang.to_string(),
        sha256: m.sha256,
        source: "tts".into(),
        normalized: Some(normalized),
        duration_ms: m.duration_ms,
    }))
}

/// The loudspeaker schedule of one area's playlist, validated, ready for the transaction.
async fn prepare_schedule(
    state: &AppState,
    b: &Bulletin,
    p: &AreaPlaylist,
    req: &PublishRequest,
    priority: Priority,
) -> Result<schedules::Prepared> {
    let tz: chrono_tz::Tz = state
        .settings
        .time_zone
        .parse()
        .unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    let rule = match (&req.rule, priority) {
        (Some(r), p) if p != Priority::Emergency => r.clone(),
        _ => RuleSpec::Once {
            // A few seconds ahead so the occurrence is inside the dispatched window.
            at: (chrono::Utc::now() + chrono::Duration::seconds(2))
                .with_timezone(&tz)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
        },
    };
    let title = b.variants.first().map(|v| v.title.clone()).unwrap_or_default();
    schedules::prepare(
        state,
        &NewSchedule {
            title: format!("Bản tin: {}", title.chars().take(180).collect::<String>()),
            media: p.media.clone(),
            targets: Targets {
                areas: vec![p.area.clone()],
                devices: Vec::new(),
            },
            priority,
            rule,
            time_zone: Some(state.settings.time_zone.clone()),
            valid_from: None,
            valid_until: b.valid_until.map(crate::store::from_ms),
            volume: req.volume,
            repeat: None,
            on_preempt: Default::default(),
            repetition: None,
            valid_for_s: None,
            relay: None,
        },
    )
    .await
}

/// Take a bulletin off all boards (schedules already created stay; disable them in
/// `schedules`), audited as `bulletin.unpublish`.
pub async fn unpublish(state: &AppState, actor: &str, id: &str) -> Result<Bulletin> {
    let mut tx = state.store.begin_write().await?;
    let before = load_in(&mut tx, id).await?;
    db::clear_targets(&mut tx, id).await?;
    let after = audited(&mut tx, actor, "bulletin.unpublish", &before).await?;
    tx.commit().await?;
    state.bulletins.bump();
    Ok(after)
}
