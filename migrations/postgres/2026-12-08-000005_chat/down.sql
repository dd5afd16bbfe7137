DELETE FROM notification_cursors WHERE channel = 'chat';
DROP TABLE chat_link_tokens;
DROP TABLE chat_questions;
DROP TABLE chat_deliveries;
