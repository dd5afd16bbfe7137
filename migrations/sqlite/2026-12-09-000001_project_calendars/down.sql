DROP TABLE project_calendars;
