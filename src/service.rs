//! placeholder
pub async fn run(
    _cfg: crate::config::Config,
    _path: std::path::PathBuf,
) -> crate::error::Result<i32> {
    Ok(0)
}
