//! The public feeds (issue 15), for the provincial portal, the Zalo mini app and social media
//! tools: RSS 2.0 (`rss.xml`, written by the `rss` crate), Atom (`atom.xml`, `atom_syndication`)
//! and JSON Feed 1.1 (`feed.json`) of the public bulletins, site-wide (`/feeds/…`), per area
//! (`/feeds/khu-vuc/{code}/…`) and per published policy (`/feeds/chinh-sach/{id}/…`). Each item
//! links to the bulletin's page and carries its first audio as an enclosure / attachment. The
//! answer has a strong ETag (sha256 of the body), `If-None-Match` → 304, and
//! `Cache-Control: public, max-age=60`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::markdown;
use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::public;
use crate::store::public::PublicBulletin;

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/feeds/{format}", get(site))
        .route("/feeds/khu-vuc/{code}/{format}", get(area))
        .route("/feeds/chinh-sach/{id}/{format}", get(policy))
}

/// A feed's format, by its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `rss.xml`.
    Rss,
    /// `atom.xml`.
    Atom,
    /// `feed.json`.
    Json,
}

impl Format {
    fn parse(name: &str) -> Result<Format> {
        match name {
            "rss.xml" => Ok(Format::Rss),
            "atom.xml" => Ok(Format::Atom),
            "feed.json" => Ok(Format::Json),
            _ => Err(Error::NotFound(format!("feed `{name}`"))),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }
}

/// What a feed is about.
pub struct Channel {
    /// Title.
    pub title: String,
    /// The page it mirrors (absolute).
    pub link: String,
    /// The feed's own base path (`/feeds/khu-vuc/08`).
    pub base: String,
    /// A description.
    pub description: String,
}

fn rfc3339(ms: i64) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).expect("UTC+7"))
}

struct Entry {
    id: String,
    url: String,
    title: String,
    text: String,
    html: String,
    published: i64,
    category: String,
    audio: Option<(String, i64, &'static str)>,
}

/// The MIME type of an audio container as the media library probed it.
pub fn audio_mime(container: &str) -> &'static str {
    match container.to_ascii_lowercase().as_str() {
        "wav" | "wave" => "audio/wav",
        "ogg" | "vorbis" => "audio/ogg",
        "flac" => "audio/flac",
        "m4a" | "mp4" | "aac" => "audio/mp4",
        _ => "audio/mpeg",
    }
}

fn entries(state: &AppState, list: &[PublicBulletin]) -> Vec<Entry> {
    list.iter()
        .map(|b| {
            let v = b.variants.first();
            Entry {
                id: format!("urn:uuid:{}", b.id),
                url: format!("{}/ban-tin/{}", state.public_url, b.id),
                title: v.map(|v| v.title.clone()).unwrap_or_default(),
                text: v.map(|v| markdown::to_plain(&v.body)).unwrap_or_default(),
                html: v.map(|v| v.html.clone()).unwrap_or_default(),
                published: b.published_at,
                category: b.category.clone(),
                audio: b.audio.first().map(|a| {
                    (
                        format!("{}/media/{}", state.public_url, a.sha256),
                        a.size,
                        audio_mime(&a.container),
                    )
                }),
            }
        })
        .collect()
}

/// The body of the feed `format` of `ch` with `items`.
fn write(state: &AppState, format: Format, ch: &Channel, list: &[PublicBulletin]) -> Result<String> {
    let items = entries(state, list);
    let updated = list.iter().map(|b| b.published_at).max().unwrap_or(0);
    let self_url = |name: &str| format!("{}{}/{name}", state.public_url, ch.base);
    Ok(match format {
        Format::Rss => {
            let mut c = rss::Channel::default();
            c.set_title(ch.title.clone());
            c.set_link(ch.link.clone());
            c.set_description(ch.description.clone());
            c.set_language("vi".to_string());
            c.set_last_build_date(rfc3339(updated).to_rfc2822());
            c.set_items(
                items
                    .into_iter()
                    .map(|e| {
                        let mut i = rss::Item::default();
                        i.set_title(e.title);
                        i.set_link(e.url.clone());
                        i.set_guid(rss::Guid {
                            value: e.id,
                            permalink: false,
                        });
                        i.set_description(e.text);
                        i.set_pub_date(rfc3339(e.published).to_rfc2822());
                        i.set_categories(vec![rss::Category {
                            name: e.category,
                            domain: None,
                        }]);
                        if let Some((url, size, mime)) = e.audio {
                            i.set_enclosure(rss::Enclosure {
                                url,
                                length: size.to_string(),
                                mime_type: mime.into(),
                            });
                        }
                        i
                    })
                    .collect::<Vec<_>>(),
            );
            c.to_string()
        }
        Format::Atom => {
            let mut f = atom_syndication::Feed::default();
            f.set_title(ch.title.clone());
            f.set_id(self_url("atom.xml"));
            f.set_updated(rfc3339(updated));
            f.set_lang("vi".to_string());
            f.set_links(vec![
                atom_syndication::Link {
                    href: ch.link.clone(),
                    ..Default::default()
                },
                atom_syndication::Link {
                    href: self_url("atom.xml"),
                    rel: "self".into(),
                    mime_type: Some("application/atom+xml".into()),
                    ..Default::default()
                },
            ]);
            f.set_entries(
                items
                    .into_iter()
                    .map(|e| {
                        let mut x = atom_syndication::Entry::default();
                        x.set_title(e.title);
                        x.set_id(e.id);
                        x.set_updated(rfc3339(e.published));
                        x.set_published(Some(rfc3339(e.published)));
                        let mut links = vec![atom_syndication::Link {
                            href: e.url,
                            ..Default::default()
                        }];
                        if let Some((url, size, mime)) = e.audio {
                            links.push(atom_syndication::Link {
                                href: url,
                                rel: "enclosure".into(),
                                mime_type: Some(mime.into()),
                                length: Some(size.to_string()),
                                ..Default::default()
                            });
                        }
                        x.set_links(links);
                        x.set_summary(Some(atom_syndication::Text::plain(e.text)));
                        x
                    })
                    .collect::<Vec<_>>(),
            );
            f.to_string()
        }
        Format::Json => serde_json::to_string_pretty(&json!({
            "version": "https://jsonfeed.org/version/1.1",
            "title": ch.title,
            "home_page_url": ch.link,
            "feed_url": self_url("feed.json"),
            "description": ch.description,
            "language": "vi",
            "items": items.into_iter().map(|e| json!({
                "id": e.id,
                "url": e.url,
                "title": e.title,
                "content_html": e.html,
                "content_text": e.text,
                "date_published": rfc3339(e.published).to_rfc3339(),
                "tags": [e.category],
                "attachments": e.audio.map(|(url, size, mime)| vec![json!({"url": url, "mime_type": mime, "size_in_bytes": size})]).unwrap_or_default(),
            })).collect::<Vec<_>>(),
        }))
        .map_err(|e| Error::internal_from("json feed", e))?,
    })
}

/// The answer with ETag and caching; 304 when `If-None-Match` names the body's ETag.
fn answer(format: Format, body: String, headers: &HeaderMap) -> Result<Response> {
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(body.as_bytes())[..16]));
    let etag_h = HeaderValue::from_str(&etag).map_err(|e| Error::internal_from("feed etag", e))?;
    let cc = HeaderValue::from_static("public, max-age=60");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if unchanged {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_h), (header::CACHE_CONTROL, cc)],
        )
            .into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::ETAG, etag_h),
            (header::CACHE_CONTROL, cc),
        ],
        body,
    )
        .into_response())
}

async fn site(
    State(state): State<AppState>,
    Path(format): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let format = Format::parse(&format)?;
    let list = public::latest(&state).await?;
    let ch = Channel {
        title: "Thông tin cơ sở: bản tin".into(),
        link: format!("{}/", state.public_url),
        base: "/feeds".into(),
        description: "Bản tin đã công bố trên hệ thống thông tin nguồn".into(),
    };
    answer(format, write(&state, format, &ch, &list)?, &headers)
}

async fn area(
    State(state): State<AppState>,
    Path((code, format)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let format = Format::parse(&format)?;
    let (a, list) = public::area(&state, &code).await?;
    let ch = Channel {
        title: format!("Bản tin: {}", a.name),
        link: format!("{}/khu-vuc/{}", state.public_url, a.code),
        base: format!("/feeds/khu-vuc/{}", a.code),
        description: format!("Bản tin đã công bố cho {}", a.name),
    };
    answer(format, write(&state, format, &ch, &list)?, &headers)
}

async fn policy(
    State(state): State<AppState>,
    Path((id, format)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let format = Format::parse(&format)?;
    let (p, list) = public::policy(&state, &id).await?;
    let ch = Channel {
        title: format!("Chính sách: {}", p.title),
        link: format!("{}/chinh-sach/{}", state.public_url, p.id),
        base: format!("/feeds/chinh-sach/{}", p.id),
        description: format!("{} ({})", p.title, p.issuer),
    };
    answer(format, write(&state, format, &ch, &list)?, &headers)
}
