//! Chat templates: the Jinja template shipped in the model file, rendered with minijinja
//! the way transformers' `apply_chat_template` does (trim_blocks and lstrip_blocks on,
//! `raise_exception` available).

use minijinja::{context, Environment, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One chat turn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

/// Render `template` for `messages`. `what` names where the template came from (used in
/// errors); `bos_token` / `eos_token` are exposed to the template as transformers does.
pub fn render_chat_template(
    what: &str,
    template: &str,
    messages: &[ChatMessage],
    add_generation_prompt: bool,
    bos_token: &str,
    eos_token: &str,
) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
        Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
    });
    let tmpl = env
        .template_from_str(template)
        .map_err(|e| Error::input(format!("chat template of {what}"), format!("does not parse: {e:#}")))?;
    tmpl.render(context! {
        messages => messages,
        add_generation_prompt => add_generation_prompt,
        bos_token => bos_token,
        eos_token => eos_token,
    })
    .map_err(|e| Error::input(format!("chat template of {what}"), format!("failed to render: {e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-135M-Instruct's template, verbatim from its GGUF.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn renders_smollm2_im_start_format() {
        let msgs = [ChatMessage::new("user", "What is the capital of France?")];
        let out = render_chat_template("test", SMOLLM2, &msgs, true, "<|im_start|>", "<|im_end|>").unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        );
        let msgs = [ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "Hi")];
        let out = render_chat_template("test", SMOLLM2, &msgs, false, "", "").unwrap();
        assert_eq!(out, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    }

    #[test]
    fn template_errors_are_input_errors() {
        let e = render_chat_template("x.gguf", "{% for %}", &[], true, "", "").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("x.gguf"), "{e}");
        let e = render_chat_template("x.gguf", "{{ raise_exception('no system role') }}", &[], true, "", "")
            .unwrap_err();
        assert!(e.to_string().contains("no system role"), "{e}");
    }
}
