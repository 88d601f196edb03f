//! Placeholder until this component lands (being written now); renders nothing.

use super::{Desired, Features, Inputs, RenderError};

pub fn render(_inp: &Inputs, _f: &Features, _d: &mut Desired) -> Result<(), RenderError> {
    Ok(())
}
