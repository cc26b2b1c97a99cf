/* Workflow interceptor module for test/replay: tells the `replayRecorder` sink every activity the workflow
 * schedules while it replays, with its arguments, so the test can compare them with the inputs the history
 * recorded. Plain JavaScript so the bundler needs no TypeScript loader for it. */
const { proxySinks } = require('@temporalio/workflow');

const { replayRecorder } = proxySinks();

exports.interceptors = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        replayRecorder.activity(input.activityType, input.args);
        return next(input);
      },
    },
  ],
});
