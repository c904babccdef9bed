//! The async API: the same results as the blocking one, and futures that are `Send` on native
//! targets (so they can be spawned on a multi-threaded executor).

mod common;

use common::gpu;
use deeproots::{bench::random_input, zoo, Engine, Precision};

fn assert_send<T: Send>(_: &T) {}

#[test]
fn async_runs_equal_blocking_runs() {
    let Some(g) = gpu() else { return };
    let model = zoo::build("nin28-root-4", 0)
        .unwrap()
        .fold_batch_norms()
        .unwrap();
    let exec = Engine::from_gpu(g.clone())
        .load(&model, Precision::F32)
        .unwrap();
    let x = random_input(exec.graph(), 3).unwrap();
    let inputs = [&x];
    let blocking = exec.run(&inputs).unwrap();

    let fut = exec.run_async(&inputs);
    assert_send(&fut);
    let run = pollster::block_on(fut).unwrap();
    assert_eq!(run[0].data(), blocking[0].data());

    let fut = exec.run_timed_async(&inputs);
    assert_send(&fut);
    let (timed, _) = pollster::block_on(fut).unwrap();
    assert_eq!(timed[0].data(), blocking[0].data());

    let fut = exec.profile_async(&inputs);
    assert_send(&fut);
    let (profiled, _) = pollster::block_on(fut).unwrap();
    assert_eq!(profiled[0].data(), blocking[0].data());

    // A second engine opened through the async constructor runs the model the same way.
    let options = deeproots::GpuOptions::from_env().unwrap();
    let engine = pollster::block_on(Engine::new_async(&options)).unwrap();
    let exec2 = engine.load(&model, Precision::F32).unwrap();
    let other = pollster::block_on(exec2.run_async(&inputs)).unwrap();
    assert_eq!(other[0].data(), blocking[0].data());
}
