mod common;
use common::*;
use serde_json::json;
#[test]
#[ignore]
fn xp_timing() {
    for name in ["tier-rust", "tier-c"] {
        let rule = load(&example_wasm(name));
        let input = input_with_fields(
            json!({"annual_revenue": "12500.50", "customer_type": "distributor"}),
        );
        for _ in 0..200 {
            run(&rule, &input);
        }
        let t = std::time::Instant::now();
        let n = 3000;
        let mut d = std::time::Duration::ZERO;
        for _ in 0..n {
            d += run(&rule, &input).duration;
        }
        eprintln!(
            "{name}: {:?}/run total, {:?}/run inside",
            t.elapsed() / n,
            d / n
        );
    }
}
