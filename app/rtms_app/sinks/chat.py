"""Chat sink: ``chat.jsonl``, one object per message, UTF-8, flushed as it goes.

Plain messages have ``timestamp``, ``user_id``, ``user_name`` and ``text``.
When Zoom sent the structured form (a JSON object inside ``data``), its fields
are added: ``message_id``, ``parent_message_id``, ``operation``,
``session_type``, ``session_id``, ``sender``, ``receiver``, ``files``,
``delete_file_ids``; ``text`` is then the message text, and ``raw`` keeps the
wire ``data`` as it came.
"""

from __future__ import annotations

from pathlib import Path

from rtms_proto import events as ev
from rtms_proto.messages import ChatUser

from ._files import JsonlWriter, to_json_value

__all__ = ["ChatSink"]


def _user(user: ChatUser | None) -> dict[str, object] | None:
    if user is None:
        return None
    return {"user_id": user.user_id, "user_name": user.user_name}


class ChatSink:
    """Writes ``<folder>/chat.jsonl`` (``append``: continues an existing one)."""

    def __init__(self, folder: Path, *, append: bool = False) -> None:
        self.path = folder / "chat.jsonl"
        self._out = JsonlWriter(self.path, append=append)
        self.messages = self._out.lines

    def add(self, event: ev.ChatReceived) -> None:
        line: dict[str, object] = {
            "timestamp": event.timestamp,
            "user_id": event.user_id,
            "user_name": event.user_name,
            "text": event.text,
        }
        chat = event.chat
        if chat is not None:
            if chat.text is not None:
                line["text"] = chat.text
            line.update(
                {
                    "message_id": chat.message_id,
                    "parent_message_id": chat.parent_message_id,
                    "operation": to_json_value(chat.operation),
                    "session_type": to_json_value(chat.session_type),
                    "session_id": chat.session_id,
                    "sender": _user(chat.sender),
                    "receiver": _user(chat.receiver),
                    "files": [
                        {"file_id": f.file_id, "file_name": f.file_name, "file_size": f.file_size}
                        for f in chat.files
                    ],
                    "delete_file_ids": list(chat.delete_file_ids),
                    "raw": event.text,
                }
            )
        self._out.write(line)
        self.messages += 1

    def close(self) -> None:
        self._out.close()
