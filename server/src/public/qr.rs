//! Short links and QR codes of public bulletins (issue 15): `GET /b/{code}` redirects (303) to
//! the bulletin's page; `GET /b/{code}/qr.svg` and `/b/{code}/qr.png` are the QR code of the
//! short link's absolute address (`public_url` + `/b/{code}`), made with the `qrcode` crate (SVG
//! directly, PNG through the `png` encoder: black modules on white, a 4-module quiet zone). A
//! code resolves only for a bulletin that is public now; anything else is 404.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use qrcode::{Color, EcLevel, QrCode};

use crate::error::{Error, Result};
use crate::services::AppState;
use crate::services::public;

/// This module's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/b/{code}", get(follow))
        .route("/b/{code}/{image}", get(image))
}

/// Pixels per module of the PNG.
const SCALE: usize = 8;
/// Quiet zone around the code, in modules.
const QUIET: usize = 4;

fn code_of(url: &str) -> Result<QrCode> {
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(|e| Error::internal(format!("qr code of {url}: {e}")))
}

/// The QR code of `url` as SVG.
pub fn svg(url: &str) -> Result<String> {
    Ok(code_of(url)?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The QR code of `url` as a grey-scale PNG.
pub fn png(url: &str) -> Result<Vec<u8>> {
    let code = code_of(url)?;
    let w = code.width();
    let colors = code.to_colors();
    let side = (w + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c != Color::Dark {
            continue;
        }
        let (x, y) = ((i % w + QUIET) * SCALE, (i / w + QUIET) * SCALE);
        for dy in 0..SCALE {
            let row = (y + dy) * side;
            pixels[row + x..row + x + SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc
            .write_header()
            .map_err(|e| Error::internal(format!("png header: {e}")))?;
        wr.write_image_data(&pixels)
            .map_err(|e| Error::internal(format!("png data: {e}")))?;
    }
    Ok(out)
}

async fn follow(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    match public::resolve(&state, &code).await {
        Ok(id) => Redirect::to(&format!("/ban-tin/{id}")).into_response(),
        Err(e) => super::error_page(e),
    }
}

async fn image(
    State(state): State<AppState>,
    Path((code, image)): Path<(String, String)>,
) -> Result<Response> {
    public::resolve(&state, &code).await?;
    let url = format!("{}/b/{code}", state.public_url);
    let cc = HeaderValue::from_static("public, max-age=86400");
    match image.as_str() {
        "qr.svg" => Ok((
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
                (header::CACHE_CONTROL, cc),
            ],
            svg(&url)?,
        )
            .into_response()),
        "qr.png" => Ok((
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                (header::CACHE_CONTROL, cc),
            ],
            png(&url)?,
        )
            .into_response()),
        _ => Err(Error::NotFound(format!("`{image}`"))),
    }
}
