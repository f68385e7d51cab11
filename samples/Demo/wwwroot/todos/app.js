// The Backbone TodoMVC app, live. What differs from the classic app: `Todos` extends LiveCollection
// instead of Backbone.Collection (and the status line). Models, views and router are the usual ones.
import { defaultClient } from '/lib/tidings/index.js';
import { LiveCollection } from '/lib/tidings/backbone.js';

const { Backbone, _, $ } = window;
const ENTER = 13;
const ESCAPE = 27;

const writes = new URLSearchParams(location.search).get('writes') === 'socket' ? 'socket' : 'rest';
const tidings = defaultClient({ writes });

const Todo = Backbone.Model.extend({
  defaults: { title: '', completed: false },
  toggle() {
    this.save({ completed: !this.get('completed') });
  },
});

const Todos = LiveCollection.extend({
  model: Todo,
  url: '/api/todos',
  comparator: 'order',
  completed() { return this.where({ completed: true }); },
  remaining() { return this.where({ completed: false }); },
  nextOrder() { return this.length ? (this.max((t) => t.get('order') ?? 0).get('order') ?? 0) + 1 : 1; },
});

const todos = new Todos();
let filter = '';

const TodoView = Backbone.View.extend({
  tagName: 'li',
  template: _.template('<div class="view"><input class="toggle" type="checkbox" <%= completed ? "checked" : "" %>>'
    + '<label><%- title %></label><button class="destroy"></button></div><input class="edit" value="<%- title %>">'),
  events: {
    'click .toggle': 'toggleCompleted',
    'dblclick label': 'edit',
    'click .destroy': 'clear',
    'keypress .edit': 'updateOnEnter',
    'keydown .edit': 'revertOnEscape',
    'blur .edit': 'close',
  },
  initialize() {
    this.listenTo(this.model, 'change', this.render);
    this.listenTo(this.model, 'remove destroy', this.remove);
    this.listenTo(this.model, 'visible', this.toggleVisible);
  },
  render() {
    // A remote change must not wipe what is being typed here.
    if (this.$el.hasClass('editing')) return this;
    this.$el.html(this.template(this.model.toJSON()));
    this.$el.toggleClass('completed', this.model.get('completed'));
    this.$el.attr('data-id', this.model.id ?? '');
    this.el.dataset.cid = this.model.cid; // stable before the id is known
    this.toggleVisible();
    this.$input = this.$('.edit');
    return this;
  },
  toggleVisible() { this.$el.toggleClass('hidden', this.isHidden()); },
  isHidden() {
    return filter === 'completed' ? !this.model.get('completed') : filter === 'active' ? this.model.get('completed') : false;
  },
  toggleCompleted() { this.model.toggle(); },
  edit() {
    this.$el.addClass('editing');
    this.$input.val(this.model.get('title')).focus();
  },
  close() {
    if (!this.$el.hasClass('editing')) return;
    const value = this.$input.val().trim();
    this.$el.removeClass('editing');
    if (!value) this.clear();
    else if (value !== this.model.get('title')) this.model.save({ title: value });
    else this.render();
  },
  updateOnEnter(e) { if (e.which === ENTER) this.close(); },
  revertOnEscape(e) {
    if (e.which !== ESCAPE) return;
    this.$el.removeClass('editing');
    this.render();
  },
  clear() { this.model.destroy(); },
});

const AppView = Backbone.View.extend({
  el: '.todoapp',
  events: {
    'keypress .new-todo': 'createOnEnter',
    'click .clear-completed': 'clearCompleted',
    'click .toggle-all': 'toggleAllComplete',
  },
  initialize() {
    this.allCheckbox = this.$('.toggle-all')[0];
    this.$input = this.$('.new-todo');
    this.$footer = this.$('.footer');
    this.$main = this.$('.main');
    this.$list = this.$('.todo-list');
    this.listenTo(todos, 'add', this.addOne);
    this.listenTo(todos, 'reset', this.addAll);
    this.listenTo(todos, 'sort', this.reorder);
    this.listenTo(todos, 'change:completed', this.filterOne);
    this.listenTo(todos, 'filter', this.filterAll);
    this.listenTo(todos, 'update reset change', _.debounce(this.render, 0));
    this.listenTo(todos, 'error live:error', (_model, error) => this.showError(error));
    todos.fetch({ reset: true });
  },
  render() {
    const completed = todos.completed().length;
    const remaining = todos.remaining().length;
    this.$main.toggle(todos.length > 0);
    this.$footer.toggle(todos.length > 0);
    this.$('.todo-count').html(`<strong>${remaining}</strong> ${remaining === 1 ? 'item' : 'items'} left`);
    this.$('.filters a').removeClass('selected').filter(`[data-filter="${filter}"]`).addClass('selected');
    this.$('.clear-completed').toggle(completed > 0);
    this.allCheckbox.checked = todos.length > 0 && remaining === 0;
  },
  addOne(todo) {
    const view = new TodoView({ model: todo });
    const index = todos.indexOf(todo);
    const next = this.$list.children().eq(index);
    if (next.length) next.before(view.render().el);
    else this.$list.append(view.render().el);
  },
  addAll() {
    this.$list.html('');
    todos.each(this.addOne, this);
  },
  reorder() {
    const byCid = new Map(this.$list.children().toArray().map((li) => [li.dataset.cid, li]));
    todos.each((todo) => { const li = byCid.get(todo.cid); if (li) this.$list.append(li); });
  },
  filterOne(todo) { todo.trigger('visible'); },
  filterAll() { todos.each(this.filterOne, this); },
  createOnEnter(e) {
    if (e.which !== ENTER) return;
    const title = this.$input.val().trim();
    if (!title) return;
    todos.create({ title, order: todos.nextOrder(), completed: false });
    this.$input.val('');
  },
  clearCompleted() {
    _.invoke(todos.completed(), 'destroy');
    return false;
  },
  toggleAllComplete() {
    const completed = this.allCheckbox.checked;
    todos.each((todo) => todo.save({ completed }));
  },
  showError(error) {
    const text = error?.errors ? Object.values(error.errors).flat().join(' ') : '';
    $('#error').text(text || error?.message || String(error));
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => $('#error').text(''), 5000);
  },
});

const Router = Backbone.Router.extend({
  routes: { '*filter': 'setFilter' },
  setFilter(param) {
    filter = param || '';
    todos.trigger('filter');
    app.render();
  },
});

const app = new AppView();
new Router();
Backbone.history.start();

// Connection status, for people (and tests) to see.
const status = document.getElementById('status');
const show = (online) => {
  status.textContent = online ? `live (${writes})` : 'offline — changes will sync';
  status.classList.toggle('offline', !online);
};
tidings.on('up', () => show(true));
tidings.on('down', () => show(false));
todos.live.ready.then(() => { show(tidings.online); document.body.dataset.ready = 'true'; });
window.todos = todos;
